// Where a LoftQ step's time goes on a device: each operation of one step on a 4096×11008
// matrix (r = 64, k = 72), timed alone (median of repeated runs, each ended by a round trip
// that waits for the device), and the host-side k×k algebra. Prints one JSON line.
//   npx tsx bench/device-ops.bench.ts [--device cpu|cuda] [--shape 4096x11008] [--repeat 20]
import { cholesky, invertUpperTriangular, symmetricEigen } from '../src-main/engine/tensor/dense';
import { orthonormalize } from '../src-main/engine/lowrank/subspace';
import { codebookFor } from '../src-main/engine/quant/blockwise';
import type { DeviceMatrix } from '../src-main/engine/tensor/device';
import { openDevice, type DeviceChoice } from '../src-main/engine/tensor/devices';
import { matrix } from '../src-main/engine/tensor/matrix';
import { median, syntheticWeight } from './bench-util';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);

async function main(): Promise<void> {
  const [rows, cols] = arg('shape', '4096x11008').split('x').map(Number);
  const repeat = Number(arg('repeat', '20'));
  const { device } = await openDevice(arg('device', 'cuda') as DeviceChoice);
  const k = 72;
  const r = 64;
  const w = await device.upload(matrix(rows, cols, syntheticWeight(rows, cols, 5)));
  const tiny = await device.upload(matrix(2, 2));
  const sync = () => device.sumSquares(tiny);
  const times: Record<string, number> = {};
  /** Median ms of `fn` (its outputs freed), the device drained before and after each run. */
  const time = async (name: string, fn: () => Promise<unknown>) => {
    const runs: number[] = [];
    for (let i = 0; i < repeat + 2; i++) {
      await sync();
      const t0 = performance.now();
      const out = await fn();
      await sync();
      if (i >= 2) runs.push(performance.now() - t0);
      for (const o of Array.isArray(out) ? out : [out]) (o as DeviceMatrix | undefined)?.dispose?.();
    }
    times[name] = median(runs);
  };
  const omega = await device.randomNormal(cols, k, 1);
  const y = await device.matmul(w, omega);
  const q = (await orthonormalize(device, y)).q;
  const b = await device.randomNormal(rows, r, 2);
  const a = await device.randomNormal(r, cols, 3);
  const codebook = codebookFor({ kind: 'nf', bits: 2, blockSize: 64 });
  const prev = await device.allocQuantized(rows * cols, codebook);
  const out = await device.allocQuantized(rows * cols, codebook);
  const diff = await device.zeros(rows, cols);
  await device.quantize(w, w, prev, codebook);

  await time('round_trip', () => sync());
  await time('randomNormal n×k', () => device.randomNormal(cols, k, 9));
  await time('D·Ω tf32', () => device.matmul(w, omega, { precision: 'tf32' }));
  await time('D·Ω fp32', () => device.matmul(w, omega, { precision: 'fp32' }));
  await time('Dᵀ·Q tf32', () => device.matmul(w, q, { transA: true, precision: 'tf32' }));
  await time('Dᵀ·Q fp32', () => device.matmul(w, q, { transA: true, precision: 'fp32' }));
  await time('gram m×k', () => device.gram(q));
  await time('gram n×k', () => device.gram(omega));
  await time('orthonormalize m×k 1 pass', async () => (await orthonormalize(device, y, { passes: 1 })).q);
  await time('orthonormalize m×k 2 passes', async () => (await orthonormalize(device, y)).q);
  await time('Y·R⁻¹ (m×k · k×k)', async () => {
    const small = await device.upload(matrix(k, k));
    const p = await device.matmul(y, small, { precision: 'fp32' });
    small.dispose();
    return p;
  });
  await time('lowRankResidual W − B·A', () => device.lowRankResidual(w, b, a));
  await time('quantize (diff, previous)', () => device.quantize(w, w, out, codebook, { diff, previous: prev }));
  await time('quantize (diff)', () => device.quantize(w, w, out, codebook, { diff }));
  await time('quantizationErrorSq', () => device.quantizationErrorSq(w, prev, codebook));
  await time('scaleColumns n×r + transpose', async () => {
    const s = await device.scaleColumns(a, new Array(cols).fill(0.5));
    const t = await device.transpose(s);
    s.dispose();
    return t;
  });
  await time('packCodes + download', () => device.packCodes(out.codes, 2));

  // The host's share: the k×k algebra of one step (on the Ritz Gram BBᵀ, B = QᵀD).
  const bt = await device.matmul(w, q, { transA: true });
  const g = await device.gram(bt);
  bt.dispose();
  const hostRuns = (fn: () => void) => {
    const runs: number[] = [];
    for (let i = 0; i < repeat + 2; i++) {
      const t0 = performance.now();
      fn();
      if (i >= 2) runs.push(performance.now() - t0);
    }
    return median(runs);
  };
  times['host symmetricEigen k×k'] = hostRuns(() => symmetricEigen(g, k));
  times['host cholesky + inverse k×k'] = hostRuns(() => {
    const c = cholesky(g, k);
    if (c.ok) invertUpperTriangular(c.r, k);
  });
  for (const t of [omega, y, q, b, a, prev, out, diff, w, tiny]) t.dispose();
  console.log(JSON.stringify({ device: device.info.name, shape: [rows, cols], k, ms: times }));
  await device.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
