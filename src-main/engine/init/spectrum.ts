// The top singular values of a residual, for the per-matrix metrics (the same solver the
// LoftQ path uses, so QLoRA and LoftQ spectra are comparable).
import { solverFor } from '../lowrank';
import type { LinalgBackend } from '../tensor/backend';
import type { Matrix } from '../tensor/matrix';
import type { MatrixInitOptions } from './types';

export async function lowRankSpectrum(backend: LinalgBackend, d: Matrix, options: MatrixInitOptions): Promise<number[]> {
  const solve = solverFor(options.svd, { seed: options.seed });
  const { spectrum } = await solve(backend, d, options.rank);
  return Array.from(spectrum);
}
