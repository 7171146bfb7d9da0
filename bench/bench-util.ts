// Shared pieces of the benchmarks: the memory-bandwidth floor measured in the same run,
// timing with warm-up, and synthetic weights shaped like trained ones.
import { Rng } from '../src-main/engine/util/random';

/** Streaming copy bandwidth in bytes/s (read + write counted), median of a few rounds. */
export function measureCopyBandwidth(bytes = 256 * 2 ** 20): number {
  const n = bytes / 4;
  const src = new Float32Array(n).fill(1.5);
  const dst = new Float32Array(n);
  dst.set(src); // fault the pages in
  const rates: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    dst.set(src);
    rates.push((2 * bytes) / ((performance.now() - t0) / 1000));
  }
  return median(rates);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Trained-weight-like matrix: Gaussian bulk, decaying low-rank part, a few outlier columns. */
export function syntheticWeight(rows: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const std = 1 / Math.sqrt(cols);
  const w = rng.fillNormal(new Float32Array(rows * cols), 0.6 * std) as Float32Array;
  const rank = 8;
  const u = new Float32Array(rows);
  const v = new Float32Array(cols);
  for (let k = 0; k < rank; k++) {
    const sigma = 2 * std * Math.sqrt(rows) * Math.exp(-k / 3) / Math.sqrt(rank);
    rng.fillNormal(u, 1 / Math.sqrt(rows));
    rng.fillNormal(v, 1 / Math.sqrt(cols));
    for (let i = 0; i < rows; i++) {
      const s = sigma * u[i];
      const row = i * cols;
      for (let j = 0; j < cols; j++) w[row + j] += s * v[j];
    }
  }
  for (let o = 0; o < 4; o++) {
    const j = rng.nextUint32() % cols;
    for (let i = 0; i < rows; i++) w[i * cols + j] *= 5;
  }
  return w;
}

export function fmtGBs(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e9).toFixed(1)} GB/s`;
}
