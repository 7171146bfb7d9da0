// One 4096×4096 matrix, NF4, r = 64, T = 5 on the CPU backend: LoftQ with the randomized
// solver (the default) against LoftQ with the exact solver, and the time as a ratio to the
// memory-bandwidth floor measured in the same run.
//   npx tsx bench/loftq-matrix.bench.ts [--size 4096] [--skip-exact]
import { loftqInit } from '../src-main/engine/init/loftq';
import { loraScaling, type MatrixInitOptions } from '../src-main/engine/init/types';
import { ParallelQuantizer } from '../src-main/engine/quant/parallel-quantizer';
import { CpuBackend } from '../src-main/engine/tensor/cpu-backend';
import { matrix } from '../src-main/engine/tensor/matrix';
import { fmtGBs, measureCopyBandwidth, median, syntheticWeight } from './bench-util';

const args = process.argv.slice(2);
const size = Number(args[args.indexOf('--size') + 1] || 4096) || 4096;
const skipExact = args.includes('--skip-exact');
const rank = 64;
const iters = 5;

const bandwidth = measureCopyBandwidth();
const w = matrix(size, size, syntheticWeight(size, size, 1234));
// Floor: each alternating step must stream the float32 matrix through memory at least once.
const floorSeconds = (iters * 4 * size * size) / (bandwidth / 2);
const backend = new CpuBackend();
const parallel = new ParallelQuantizer();
const options = (svd: 'randomized' | 'exact'): MatrixInitOptions => ({
  quant: { kind: 'nf', bits: 4, blockSize: 64 },
  rank,
  scaling: loraScaling(16, rank, false),
  iters,
  svd,
  seed: 1,
});

console.log(`LoftQ one matrix: ${size}×${size}, NF4, r=${rank}, T=${iters}; copy bandwidth ${fmtGBs(bandwidth)} (read+write)`);
// Warm-up: JIT tiers and ORT session creation stay out of the timed runs.
await loftqInit.init(matrix(512, 512, syntheticWeight(512, 512, 1)), options('randomized'), { backend, parallel });
const times: number[] = [];
let randomized = null;
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  randomized = await loftqInit.init(w, options('randomized'), { backend, parallel });
  times.push((performance.now() - t0) / 1000);
}
const t = median(times);
console.log(`randomized: ${t.toFixed(2)} s (median of ${times.map((x) => x.toFixed(2)).join(', ')}), ${(t / floorSeconds).toFixed(1)}× the bandwidth floor of ${floorSeconds.toFixed(3)} s`);
console.log(`  err_q ${randomized!.errQ.toFixed(5)}  err_init ${randomized!.errInit.toFixed(5)}  steps ${randomized!.stepErrors.map((e) => e.toFixed(5)).join(' ')}`);
if (!skipExact) {
  const t0 = performance.now();
  const exact = await loftqInit.init(w, options('exact'), { backend, parallel });
  const te = (performance.now() - t0) / 1000;
  console.log(`exact:      ${te.toFixed(2)} s, err_init ${exact.errInit.toFixed(5)}  steps ${exact.stepErrors.map((e) => e.toFixed(5)).join(' ')}`);
  console.log(`randomized / exact: error ratio ${(randomized!.errInit / exact.errInit).toFixed(4)} (${(100 * (randomized!.errInit / exact.errInit - 1)).toFixed(2)}%), time ratio ${(t / te).toFixed(3)}`);
}
await backend.dispose();
await parallel.dispose();
