// Bundles the CLI into dist/cli.cjs (and the cross-check's logits dump) (run by `npm ci` through "prepare", and by npm start/test).
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  external: ['onnxruntime-node'],
  logLevel: 'warning',
  // find-up reads import.meta.url only when run as ESM (tsx); the bundle uses __dirname.
  logOverride: { 'empty-import-meta': 'silent' },
};

await build({ ...common, entryPoints: ['src-main/cli/index.ts'], outfile: 'dist/cli.cjs' });
// The cross-check's logits dump runs on the GPU machine, where there is no TypeScript.
await build({ ...common, entryPoints: ['scripts/crosscheck/xcheck-logits.ts'], outfile: 'dist/xcheck-logits.cjs' });
await build({ ...common, entryPoints: ['scripts/crosscheck/xcheck-grads.ts'], outfile: 'dist/xcheck-grads.cjs' });
// The GPU benchmark of one matrix, for scripts/device/gpu-check.sh.
await build({ ...common, entryPoints: ['bench/loftq-matrix.bench.ts'], outfile: 'dist/bench-loftq-matrix.cjs' });
await build({ ...common, entryPoints: ['bench/device-ops.bench.ts'], outfile: 'dist/bench-device-ops.cjs' });
// The GPU forward benchmark and the Hugging Face cross-check's dumps, for scripts/device/gpu-forward.sh.
await build({ ...common, entryPoints: ['bench/forward-gpu.bench.ts'], outfile: 'dist/bench-forward-gpu.cjs' });
await build({ ...common, entryPoints: ['bench/train-gpu.bench.ts'], outfile: 'dist/bench-train-gpu.cjs' });
