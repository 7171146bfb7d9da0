// CholeskyQR driven from the host: the Gram of Y on the device (float64), its Cholesky factor
// and R⁻¹ here in float64, Y·R⁻¹ on the device in float32. The CPU backend orthonormalizes
// this way; the CUDA backend runs the same passes on the GPU (native/src/cholesky.cu), and the
// exact solver uses this one where it needs R itself.
import type { DeviceMatrix, Precision } from './device';
import { cholesky, invertUpperTriangular, multiply, toMatrix } from './dense';

// A Cholesky pivot below this fraction of the Gram's largest diagonal means κ(Y) ≳ 1e6:
// Y·R⁻¹ in float32 would then lose more than a few percent of orthogonality, so shift instead.
export const PIVOT_REL = 1e-12;
// Shift for numerically singular Grams, relative to the trace. Bounds κ(Y·R⁻¹) by ~1e5 so
// the next (unshifted) passes succeed; shifting never changes the span (R stays invertible).
export const SHIFT_REL = 1e-10;
export const MAX_PASSES = 4;

/** What CholeskyQR needs of a device. */
export interface CholeskyQrOps {
  gram(a: DeviceMatrix): Promise<Float64Array>;
  upload(m: { rows: number; cols: number; data: Float32Array }): Promise<DeviceMatrix>;
  matmul(a: DeviceMatrix, b: DeviceMatrix, options: { precision: Precision }): Promise<DeviceMatrix>;
  zeros(rows: number, cols: number): Promise<DeviceMatrix>;
}

export interface CholeskyQrOptions {
  /**
   * Clean (unshifted) Cholesky passes: 2 (CholeskyQR2, the default) for a basis that must be
   * orthonormal to float32 working precision; 1 for the intermediate bases of a power
   * iteration, which only have to keep the columns apart.
   */
  passes?: 1 | 2;
  /** Accumulate R (Y = Q·R). */
  wantR?: boolean;
}

/** M·S for a small host matrix S (k×k', float64 rounded to float32), in full float32. */
export async function multiplySmallWith(ops: CholeskyQrOps, m: DeviceMatrix, s: Float64Array, rows: number, cols: number): Promise<DeviceMatrix> {
  const small = await ops.upload(toMatrix(s, rows, cols));
  try {
    return await ops.matmul(m, small, { precision: 'fp32' });
  } finally {
    small.dispose();
  }
}

/**
 * CholeskyQR2 by default. Because only the product is float32, one pass leaves an
 * orthogonality error of ~u₃₂·κ(Y) and the second pass removes it. A numerically singular
 * Gram (rank-deficient D) gets a shifted first pass and then the clean passes. `y` is left as
 * it is; the result is a new tensor (zeros when Y = 0), with R when asked.
 */
export async function hostCholeskyQr(ops: CholeskyQrOps, y: DeviceMatrix, options: CholeskyQrOptions = {}): Promise<{ q: DeviceMatrix; r: Float64Array | null }> {
  const k = y.cols;
  const wanted = options.passes ?? 2;
  let current = y;
  let rTotal: Float64Array | null = null;
  let cleanPasses = 0;
  const dropCurrent = () => {
    if (current !== y) current.dispose();
  };
  try {
    for (let pass = 0; pass < MAX_PASSES && cleanPasses < wanted; pass++) {
      const g = await ops.gram(current);
      let scale = 0;
      let trace = 0;
      for (let i = 0; i < k; i++) {
        const d = g[i * k + i];
        if (!Number.isFinite(d)) throw new Error('low-rank solver: the matrix contains NaN or infinite values');
        scale = Math.max(scale, d);
        trace += d;
      }
      // Y = 0 (e.g. D = 0): there is no subspace; return zeros rather than dividing by zero.
      if (scale === 0) {
        dropCurrent();
        return { q: await ops.zeros(y.rows, k), r: options.wantR ? new Float64Array(k * k) : null };
      }

      let res = cholesky(g, k, { minPivot: PIVOT_REL * scale });
      if (res.ok) {
        cleanPasses++;
      } else {
        cleanPasses = 0;
        let shift = SHIFT_REL * trace;
        res = cholesky(g, k, { shift });
        // Rounding can still defeat a tiny shift; grow it until the factorization holds.
        while (!res.ok) {
          shift *= 100;
          res = cholesky(g, k, { shift });
        }
      }
      const next = await multiplySmallWith(ops, current, invertUpperTriangular(res.r, k), k, k);
      dropCurrent();
      current = next;
      if (options.wantR) rTotal = rTotal ? multiply(res.r, rTotal, k, k, k) : res.r;
    }
  } catch (e) {
    dropCurrent();
    throw e;
  }
  // Every pass that does not return early multiplies, so `current` is a new tensor here.
  return { q: current, r: options.wantR ? (rTotal ?? new Float64Array(k * k)) : null };
}
