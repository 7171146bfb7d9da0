// Component and unit tests of the dashboard (src-renderer/), in jsdom:
//   npx vitest run -c vitest.renderer.config.ts
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [react()],
  test: {
    include: ['src-renderer/**/*.test.{ts,tsx}'],
    environment: 'jsdom',
    restoreMocks: true,
  },
});
