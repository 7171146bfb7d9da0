// One matrix through LoftQ on a device: the randomized solver (the default) against the exact
// solver, timed end to end on the device (until its results are ready), with the time as a
// ratio to the memory-bandwidth floor measured in the same run (CPU), or printed as JSON for
// the GPU script to set against PyTorch measured in the same run (scripts/device/).
//   npx tsx bench/loftq-matrix.bench.ts [--size 4096 | --shape 4096x11008] [--bits 4] [--quant nf]
//        [--rank 64] [--iters 5] [--device cpu|cuda] [--skip-exact] [--repeat 3]
//        [--matrix FILE.safetensors --tensor NAME] [--json]
import { loftqInit } from '../src-main/engine/init/loftq';
import { loraScaling, type MatrixInitOptions, type MatrixInitResult } from '../src-main/engine/init/types';
import { openSafetensors, readTensorF32 } from '../src-main/engine/io/safetensors-read';
import type { Precision } from '../src-main/engine/tensor/device';
import { openDevice, type DeviceChoice } from '../src-main/engine/tensor/devices';
import { matrix, type Matrix } from '../src-main/engine/tensor/matrix';
import { fmtGBs, measureCopyBandwidth, median, syntheticWeight } from './bench-util';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);
const size = Number(arg('size', '4096'));
const [rows, cols] = arg('shape', `${size}x${size}`).split('x').map(Number);
const bits = Number(arg('bits', '4'));
const quant = arg('quant', 'nf') as 'nf' | 'uniform';
const rank = Number(arg('rank', '64'));
const iters = Number(arg('iters', '5'));
const repeat = Number(arg('repeat', '3'));
const choice = arg('device', 'cpu') as DeviceChoice;
const skipExact = args.includes('--skip-exact');
const json = args.includes('--json');
const file = arg('matrix', '');

async function loadMatrix(): Promise<Matrix> {
  if (!file) return matrix(rows, cols, syntheticWeight(rows, cols, 1234));
  const f = await openSafetensors(file);
  const name = arg('tensor', [...f.tensors.keys()][0]);
  const info = f.tensors.get(name)!;
  return matrix(info.shape[0], info.shape[1], await readTensorF32(f, name));
}

async function main(): Promise<void> {
  const { device, reason } = await openDevice(choice);
  const host = await loadMatrix();
  const w = await device.upload(host);
  const options = (svd: 'randomized' | 'exact', sketchPrecision?: Precision, powerIters?: MatrixInitOptions['powerIters'], lowRankSteps?: MatrixInitOptions['lowRankSteps']): MatrixInitOptions => ({
    quant: { kind: quant, bits, blockSize: 64 },
    rank,
    scaling: loraScaling(16, rank, false),
    iters,
    svd,
    seed: 1,
    sketchPrecision,
    powerIters,
    lowRankSteps,
  });

  /** One init, timed until the device has its results (the last sum waits for all work before it). */
  async function timed(o: MatrixInitOptions): Promise<{ seconds: number; result: MatrixInitResult }> {
    const t0 = performance.now();
    const result = await loftqInit.init(w, o, { device });
    await device.sumSquares(result.loraA);
    return { seconds: (performance.now() - t0) / 1000, result };
  }

  function free(r: MatrixInitResult): void {
    r.quantized.dispose();
    r.loraA.dispose();
    r.loraB.dispose();
  }

  async function series(o: MatrixInitOptions, n: number): Promise<{ seconds: number; all: number[]; result: MatrixInitResult }> {
    const all: number[] = [];
    let last: MatrixInitResult | null = null;
    for (let i = 0; i < n; i++) {
      if (last) free(last);
      const { seconds, result } = await timed(o);
      all.push(seconds);
      last = result;
    }
    return { seconds: median(all), all, result: last! };
  }

  // Warm-up: JIT tiers, ORT sessions, cuBLAS handles and kernels stay out of the timed runs.
  free((await timed(options('randomized'))).result);
  const fast = await series(options('randomized'), repeat);
  const fp32 = device.info.kind === 'cuda' ? await series(options('randomized', 'fp32'), repeat) : null;
  // Variants of the power iterations (first step, warm steps), to choose the defaults by measurement.
  const variants: Record<string, { seconds: number; err_init: number }> = {};
  if (device.info.kind === 'cuda') {
    const runs: Array<[MatrixInitOptions['lowRankSteps'], number, number]> = [['subspace', 2, 0], ['subspace', 1, 1], ['randomized', 2, 1], ['randomized', 2, 0]];
    for (const [steps, first, warm] of runs) {
      const v = await series(options('randomized', undefined, { first, warm }, steps), repeat);
      variants[`${steps} ${first}/${warm}`] = { seconds: v.seconds, err_init: v.result.errInit };
      free(v.result);
    }
  }
  // One round trip to the device and back (a sum of 16 values), median of 200.
  const tiny = await device.upload(matrix(4, 4));
  const trips: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await device.sumSquares(tiny);
    trips.push(performance.now() - t0);
  }
  tiny.dispose();
  const exact = skipExact ? null : await series(options('exact'), 1);
  const gpu = device.memoryUsage();

  const summary = {
    device: device.info.name,
    reason,
    shape: [host.rows, host.cols],
    bits,
    quant,
    rank,
    iters,
    randomized: { seconds: fast.seconds, runs: fast.all, err_q: fast.result.errQ, err_init: fast.result.errInit, steps: fast.result.stepErrors, best_step: fast.result.bestStep },
    randomized_fp32_sketch: fp32 && { seconds: fp32.seconds, runs: fp32.all, err_init: fp32.result.errInit, steps: fp32.result.stepErrors },
    exact: exact && { seconds: exact.seconds, err_init: exact.result.errInit, steps: exact.result.stepErrors, best_step: exact.result.bestStep },
    power_iteration_variants: variants,
    round_trip_us: median(trips) * 1000,
    gpu_peak_bytes: gpu?.peak ?? null,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };

  if (json) {
    console.log(JSON.stringify(summary));
  } else {
    const bandwidth = measureCopyBandwidth();
    // Floor (CPU): each alternating step must stream the float32 matrix through memory at least once.
    const floorSeconds = (iters * 4 * host.rows * host.cols) / (bandwidth / 2);
    console.log(`LoftQ one matrix: ${host.rows}×${host.cols}, ${quant.toUpperCase()}${bits}, r=${rank}, T=${iters} on ${device.info.name}; copy bandwidth ${fmtGBs(bandwidth)} (read+write)`);
    const t = fast.seconds;
    console.log(`randomized: ${t.toFixed(3)} s (median of ${fast.all.map((x) => x.toFixed(3)).join(', ')}), ${(t / floorSeconds).toFixed(1)}× the host bandwidth floor of ${floorSeconds.toFixed(3)} s`);
    console.log(`  err_q ${fast.result.errQ.toFixed(5)}  err_init ${fast.result.errInit.toFixed(5)} (step ${fast.result.bestStep})  steps ${fast.result.stepErrors.map((e) => e.toFixed(5)).join(' ')}`);
    if (fp32) console.log(`fp32 sketches: ${fp32.seconds.toFixed(3)} s, err_init ${fp32.result.errInit.toFixed(5)}`);
    if (exact) {
      console.log(`exact:      ${exact.seconds.toFixed(2)} s, err_init ${exact.result.errInit.toFixed(5)} (step ${exact.result.bestStep})  steps ${exact.result.stepErrors.map((e) => e.toFixed(5)).join(' ')}`);
      console.log(`randomized / exact: error ratio ${(fast.result.errInit / exact.result.errInit).toFixed(4)} (${(100 * (fast.result.errInit / exact.result.errInit - 1)).toFixed(2)}%), time ratio ${(t / exact.seconds).toFixed(3)}`);
    }
  }
  for (const r of [fast.result, fp32?.result, exact?.result]) if (r) free(r);
  w.dispose();
  await device.dispose();
}

// A function, not top-level await: the GPU script runs this bundled as CommonJS.
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
