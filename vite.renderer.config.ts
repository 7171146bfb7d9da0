// Builds the dashboard (src-renderer/) into out/renderer/, which `loftq serve` serves and the
// Electron window loads. Relative asset paths (base './') work from file:// and from any URL.
//   npx vite build --config vite.renderer.config.ts
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

const root = fileURLToPath(new URL('./src-renderer', import.meta.url));
const repo = fileURLToPath(new URL('.', import.meta.url));
const outDir = fileURLToPath(new URL('./out/renderer', import.meta.url));

/** The dev server injects an inline script (React refresh) that the strict CSP would block:
 *  drop the CSP meta tag in `vite dev` only; built files keep it. */
function devCsp(): Plugin {
  return {
    name: 'loftq-dev-csp',
    apply: 'serve',
    transformIndexHtml: (html) => html.replace(/<meta\s+http-equiv="Content-Security-Policy"[\s\S]*?\/>\s*/, ''),
  };
}

export default defineConfig({
  root,
  base: './',
  plugins: [react(), devCsp()],
  // The dashboard imports the engine's pure domain rules (src-main/engine/rules/) by relative
  // path, outside its root: the dev server may serve them (the build bundles them anyway).
  server: { fs: { allow: [repo] } },
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
});
