import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src-main/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // ORT sessions use native threads; forks keep each test file in its own process.
    pool: 'forks',
    globalSetup: ['src-main/test-support/build-cli.global.ts'],
  },
});
