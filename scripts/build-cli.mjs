// Bundles the CLI into dist/cli.cjs (run by `npm ci` through "prepare", and by npm start/test).
import { build } from 'esbuild';

await build({
  entryPoints: ['src-main/cli/index.ts'],
  outfile: 'dist/cli.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  external: ['onnxruntime-node'],
  logLevel: 'warning',
});
