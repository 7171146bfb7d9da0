// The top singular values of a residual, for the per-matrix metrics (the same solver the
// LoftQ path uses, so QLoRA and LoftQ spectra are comparable).
import { solverFor } from '../lowrank';
import type { ComputeDevice, DeviceMatrix } from '../tensor/device';
import type { MatrixInitOptions } from './types';

/** Singular values recorded past the rank (what the adapter leaves), so a chart shows r inside the spectrum. */
export const SPECTRUM_TAIL = 16;

export async function lowRankSpectrum(device: ComputeDevice, d: DeviceMatrix, options: MatrixInitOptions): Promise<number[]> {
  const solve = solverFor(options.svd, { seed: options.seed });
  const { U, V, spectrum } = await solve(device, d, options.rank);
  U.dispose();
  V.dispose();
  return Array.from(spectrum);
}
