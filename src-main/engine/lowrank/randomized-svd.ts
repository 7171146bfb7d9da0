// Randomized truncated SVD (Halko, Martinsson & Tropp 2011, algorithms 4.4 and 5.1): a
// Gaussian sketch, a few power iterations re-orthonormalized after every product, then an
// exact SVD of the small projection. Costs 2·powerIters + 2 passes over D.
import type { LinalgBackend } from '../tensor/backend';
import { matrix, type Matrix } from '../tensor/matrix';
import { Rng } from '../util/random';
import { assemble, orthonormalize, ritz, type SvdResult } from './subspace';

export type { SvdResult } from './subspace';

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
  warmStart?: Matrix;
}

export const DEFAULT_OVERSAMPLE = 8;
export const DEFAULT_POWER_ITERS = 2;

export async function randomizedSvd(backend: LinalgBackend, d: Matrix, opts: RandomizedSvdOptions): Promise<SvdResult> {
  const { rows: m, cols: n } = d;
  const oversample = opts.oversample ?? DEFAULT_OVERSAMPLE;
  const powerIters = opts.powerIters ?? DEFAULT_POWER_ITERS;
  checkRank(opts.rank, m, n);
  if (!Number.isInteger(oversample) || oversample < 0) throw new Error(`oversample must be a non-negative integer, got ${oversample}`);
  if (!Number.isInteger(powerIters) || powerIters < 0) throw new Error(`powerIters must be a non-negative integer, got ${powerIters}`);
  const rank = Math.min(opts.rank, m, n);
  const k = Math.min(rank + oversample, m, n);

  const omega = startBlock(n, k, opts.seed ?? 0, opts.warmStart);
  let q = (await orthonormalize(backend, await backend.matmul(d, omega))).q;
  for (let i = 0; i < powerIters; i++) {
    // Orthonormalizing between the two products keeps κ at σ₁/σ_k instead of (σ₁/σ_k)^(2i+1),
    // which float32 could not represent after one iteration on a decaying spectrum.
    const z = (await orthonormalize(backend, await backend.matmul(d, q, { transA: true }))).q;
    q = (await orthonormalize(backend, await backend.matmul(d, z))).q;
  }
  // Bᵀ = DᵀQ (n×k): the projection, computed with transA so D is never transposed in memory.
  const bt = await backend.matmul(d, q, { transA: true });
  return assemble(backend, q, bt, await ritz(backend, bt), rank);
}

export function checkRank(rank: number, m: number, n: number): void {
  if (!Number.isInteger(rank) || rank < 1) throw new Error(`rank must be a positive integer, got ${rank}`);
  if (m < 1 || n < 1) throw new Error(`cannot factor an empty ${m}x${n} matrix`);
}

/** Ω (n×k): seeded standard normal columns, the first ones replaced by the warm start's. */
export function startBlock(n: number, k: number, seed: number, warmStart?: Matrix): Matrix {
  const omega = matrix(n, k);
  const rng = new Rng(seed);
  for (let i = 0; i < omega.data.length; i++) omega.data[i] = rng.normal();
  if (warmStart) {
    if (warmStart.rows !== n) throw new Error(`warmStart has ${warmStart.rows} rows, expected ${n}`);
    const w = warmStart.cols;
    for (let j = 0; j < Math.min(w, k); j++) {
      // A zero column (a previous solve past the numerical rank) would waste a sketch column.
      let nonzero = false;
      for (let i = 0; i < n && !nonzero; i++) nonzero = warmStart.data[i * w + j] !== 0;
      if (nonzero) for (let i = 0; i < n; i++) omega.data[i * k + j] = warmStart.data[i * w + j];
    }
  }
  return omega;
}
