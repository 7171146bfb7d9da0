// Randomized truncated SVD (Halko, Martinsson & Tropp 2011, algorithms 4.4 and 5.1): a
// Gaussian sketch, a few power iterations re-orthonormalized after every product, then an
// exact SVD of the small projection. Costs 2·powerIters + 2 passes over D, all on the device.
import type { ComputeDevice, DeviceMatrix, Precision } from '../tensor/device';
import { assemble, orthonormalProduct, ritz, type SvdResult } from './subspace';

export type { SvdResult } from './subspace';

/** A start subspace: the columns of V whose singular value S[j] is nonzero. */
export interface WarmStart {
  V: DeviceMatrix;
  S: ArrayLike<number>;
}

export interface RandomizedSvdOptions {
  rank: number;
  /** Extra sketch columns beyond the rank (default 8). */
  oversample?: number;
  /** Power iterations, each one pass with Dᵀ and one with D (default 2). */
  powerIters?: number;
  /** Seed of the Gaussian test matrix (default 0). */
  seed?: number;
  /**
   * n×k' start subspace (e.g. the previous step's V in LoftQ's alternating loop). Its
   * columns come first in Ω; Gaussian columns fill the rest up to k; extra columns are ignored.
   */
  warmStart?: WarmStart;
  /**
   * Precision of the sketch and power-iteration products D·Ω, Dᵀ·Q (default tf32): they only
   * have to find the subspace, and an input rounding of ~5e-4 moves it by far less than the
   * gap the power iterations leave (see docs/ARCHITECTURE.md, "Precision on the GPU").
   */
  sketchPrecision?: Precision;
  /** Precision of the final projection Bᵀ = DᵀQ, which the factors are built from (default fp32). */
  projectionPrecision?: Precision;
}

export const DEFAULT_OVERSAMPLE = 8;
export const DEFAULT_POWER_ITERS = 2;

export async function randomizedSvd(device: ComputeDevice, d: DeviceMatrix, opts: RandomizedSvdOptions): Promise<SvdResult> {
  const { rows: m, cols: n } = d;
  const oversample = opts.oversample ?? DEFAULT_OVERSAMPLE;
  const powerIters = opts.powerIters ?? DEFAULT_POWER_ITERS;
  checkRank(opts.rank, m, n);
  if (!Number.isInteger(oversample) || oversample < 0) throw new Error(`oversample must be a non-negative integer, got ${oversample}`);
  if (!Number.isInteger(powerIters) || powerIters < 0) throw new Error(`powerIters must be a non-negative integer, got ${powerIters}`);
  const rank = Math.min(opts.rank, m, n);
  const k = Math.min(rank + oversample, m, n);

  // Each product is orthonormalized at once and then freed: at most three k-column blocks live.
  // Only the last basis, which the factors are built from, needs CholeskyQR2.
  const precision = opts.sketchPrecision ?? 'tf32';
  const step = (a: DeviceMatrix, transA: boolean, last: boolean) => orthonormalProduct(device, d, a, transA, precision, last ? 2 : 1);
  const omega = await startBlock(device, n, k, opts.seed ?? 0, opts.warmStart);
  let q: DeviceMatrix;
  try {
    q = await step(omega, false, powerIters === 0);
  } finally {
    omega.dispose();
  }
  let bt: DeviceMatrix | null = null;
  try {
    for (let i = 0; i < powerIters; i++) {
      // Orthonormalizing between the two products keeps κ at σ₁/σ_k instead of (σ₁/σ_k)^(2i+1),
      // which float32 could not represent after one iteration on a decaying spectrum.
      const z = await step(q, true, false);
      q.dispose();
      try {
        q = await step(z, false, i === powerIters - 1);
      } finally {
        z.dispose();
      }
    }
    // Bᵀ = DᵀQ (n×k): the projection, computed with transA so D is never transposed in memory.
    bt = await device.matmul(d, q, { transA: true, precision: opts.projectionPrecision ?? 'fp32' });
    return await assemble(device, q, bt, await ritz(device, bt), rank);
  } finally {
    q.dispose();
    bt?.dispose();
  }
}

export function checkRank(rank: number, m: number, n: number): void {
  if (!Number.isInteger(rank) || rank < 1) throw new Error(`rank must be a positive integer, got ${rank}`);
  if (m < 1 || n < 1) throw new Error(`cannot factor an empty ${m}x${n} matrix`);
}

/** Ω (n×k): seeded standard normal columns, the first ones replaced by the warm start's. */
export async function startBlock(device: ComputeDevice, n: number, k: number, seed: number, warmStart?: WarmStart): Promise<DeviceMatrix> {
  const omega = await device.randomNormal(n, k, seed);
  if (!warmStart) return omega;
  try {
    const { V, S } = warmStart;
    if (V.rows !== n) throw new Error(`warmStart has ${V.rows} rows, expected ${n}`);
    const usable = Math.min(V.cols, k, S.length);
    // A zero column (a previous solve past the numerical rank, σ = 0) would waste a sketch
    // column: those keep their Gaussian column. Runs of usable columns are copied at once.
    for (let j = 0; j < usable; ) {
      if (!(S[j] > 0)) {
        j++;
        continue;
      }
      let end = j;
      while (end < usable && S[end] > 0) end++;
      await device.copyColumns(omega, j, V, j, end - j);
      j = end;
    }
    return omega;
  } catch (e) {
    omega.dispose();
    throw e;
  }
}
