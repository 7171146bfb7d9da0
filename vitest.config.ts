import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // `loftq serve` and the service keep settings in the user's config folder: tests (and the
    // CLIs they start) use a throwaway one, never the real ~/.config/loftq-studio.
    env: { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'loftq-test-config-')) },
    include: ['src-main/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // ORT sessions use native threads; forks keep each test file in its own process.
    pool: 'forks',
    globalSetup: ['src-main/test-support/build-cli.global.ts'],
  },
});
