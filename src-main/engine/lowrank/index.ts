// The low-rank solvers behind one call shape, so callers (LoftQ, the metrics, the CLI's
// --svd option) pick one by name.
import type { ComputeDevice, DeviceMatrix } from '../tensor/device';
import { exactSvd } from './exact-svd';
import { randomizedSvd, type WarmStart } from './randomized-svd';
import type { SvdResult } from './subspace';

export type { SvdResult } from './subspace';
export { randomizedSvd, DEFAULT_OVERSAMPLE, DEFAULT_POWER_ITERS, type RandomizedSvdOptions, type WarmStart } from './randomized-svd';
export { exactSvd, jacobiSvd, JACOBI_MAX_DIM, type ExactSvdOptions } from './exact-svd';
export { cholesky, invertUpperTriangular, symmetricEigen, toMatrix, fromMatrix, type CholeskyResult, type SymmetricEigen } from '../tensor/dense';

export type SvdMethod = 'randomized' | 'exact';

/** Per-call options; the exact solver ignores them (it is deterministic by construction). */
export interface LowRankCallOptions {
  /** Overrides the solver's seed (e.g. one per matrix or per alternating step). */
  seed?: number;
  /** Start subspace for the randomized solver (n×k', e.g. the previous V). */
  warmStart?: WarmStart;
}

export type LowRankSolver = (device: ComputeDevice, d: DeviceMatrix, rank: number, opts?: LowRankCallOptions) => Promise<SvdResult>;

export interface SolverConfig {
  oversample?: number;
  powerIters?: number;
  seed?: number;
}

export function solverFor(method: SvdMethod, config: SolverConfig = {}): LowRankSolver {
  switch (method) {
    case 'randomized':
      return (device, d, rank, opts = {}) =>
        randomizedSvd(device, d, {
          rank,
          oversample: config.oversample,
          powerIters: config.powerIters,
          seed: opts.seed ?? config.seed,
          warmStart: opts.warmStart,
        });
    case 'exact':
      return (device, d, rank) => exactSvd(device, d, rank);
    default:
      throw new Error(`unknown SVD method '${String(method)}' (expected randomized or exact)`);
  }
}
