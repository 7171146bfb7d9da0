// End-to-end tests of the dashboard: `loftq serve` + Debian's Chromium through playwright-core.
//   npx vitest run -c vitest.e2e.config.ts
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Never the real ~/.config/loftq-studio (the harness gives each server its own as well).
    env: { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'loftq-e2e-config-')) },
    include: ['e2e/**/*.e2e.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
