// electron-vite: the app's three builds. main (Electron main + the compute utilityProcess, CommonJS
// because the engine relies on __dirname and the package is "type": "module"), preload
// (CommonJS: sandboxed preloads cannot be ES modules) and the renderer, which reuses
// vite.renderer.config.ts (the web mode's build) so that both modes ship the same dashboard.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig, type RendererViteConfig, type UserConfig } from 'electron-vite';
import { loadConfigFromFile, type ConfigEnv, type UserConfig as ViteUserConfig } from 'vite';

const root = import.meta.dirname;
const commonjs = { format: 'cjs' as const, entryFileNames: '[name].cjs', chunkFileNames: 'chunks/[name]-[hash].cjs' };

/** The renderer's own Vite config (owned by the dashboard), or null while there is none. */
async function rendererConfig(env: ConfigEnv): Promise<RendererViteConfig | null> {
  const file = resolve(root, 'vite.renderer.config.ts');
  if (!existsSync(file)) return null;
  // Vite bundles the TypeScript config itself (a plain import() of a .ts file fails here).
  const loaded = await loadConfigFromFile(env, file, root);
  if (!loaded) throw new Error(`cannot load ${file}`);
  const config: ViteUserConfig = loaded.config;
  const rendererRoot = resolve(root, config.root ?? 'src-renderer');
  const build = config.build ?? {};
  // electron-vite looks for src/renderer/index.html unless told: name the entry.
  const rolldownOptions = build.rolldownOptions ?? build.rollupOptions ?? {};
  return {
    ...config,
    root: rendererRoot,
    // Relative asset URLs: the app loads index.html from file:// (web mode works with them too).
    base: './',
    build: {
      ...build,
      outDir: resolve(root, 'out/renderer'),
      rolldownOptions: { ...rolldownOptions, input: rolldownOptions.input ?? resolve(rendererRoot, 'index.html') },
    },
  } as RendererViteConfig;
}

export default defineConfig(async (env): Promise<UserConfig> => {
  const renderer = await rendererConfig(env);
  if (!renderer) console.warn('electron.vite.config: no vite.renderer.config.ts yet, building main and preload only');
  return {
    main: {
      build: {
        outDir: resolve(root, 'out/main'),
        // Dependencies (onnxruntime-node and its native files, ws, tokenizers, ...) load from
        // node_modules at run time; electron-builder packs them and unpacks the native ones.
        externalizeDeps: true,
        sourcemap: true,
        rolldownOptions: {
          input: { main: resolve(root, 'src-main/host/main.ts'), compute: resolve(root, 'src-main/host/compute.ts') },
          external: ['onnxruntime-node'],
          output: commonjs,
        },
      },
    },
    preload: {
      build: {
        outDir: resolve(root, 'out/preload'),
        // A sandboxed preload may only require('electron') (and a few node built-ins):
        // everything else is bundled in.
        externalizeDeps: false,
        rolldownOptions: {
          input: { preload: resolve(root, 'src-main/preload/preload.ts') },
          output: commonjs,
        },
      },
    },
    ...(renderer ? { renderer } : {}),
  };
});
