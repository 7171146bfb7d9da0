// Building blocks shared by the randomized and the large exact solver: orthonormalizing a
// tall m×k block (CholeskyQR2) and extracting a truncated SVD from a projection B = QᵀD.
// The O(m·k²) work runs on the device; the k×k algebra runs here in float64.
import type { ComputeDevice, DeviceMatrix, Precision } from '../tensor/device';
import { cholesky, invertUpperTriangular, multiply, symmetricEigen, toMatrix } from './dense';

export interface SvdResult {
  /** m×r, orthonormal columns (float32, on the device: the caller disposes it). */
  U: DeviceMatrix;
  /** r singular values, descending. */
  S: Float64Array;
  /** n×r, orthonormal columns (float32, on the device: the caller disposes it). */
  V: DeviceMatrix;
  /** Every singular value the solver computed (k ≥ r of them), descending. */
  spectrum: Float64Array;
  /** Iterative exact path only: subspace rounds run and whether the stopping test was met. */
  rounds?: number;
  converged?: boolean;
}

// A Cholesky pivot below this fraction of the Gram's largest diagonal means κ(Y) ≳ 1e6:
// Y·R⁻¹ in float32 would then lose more than a few percent of orthogonality, so shift instead.
const PIVOT_REL = 1e-12;
// Shift for numerically singular Grams, relative to the trace. Bounds κ(Y·R⁻¹) by ~1e5 so
// the next (unshifted) passes succeed; shifting never changes the span (R stays invertible).
const SHIFT_REL = 1e-10;
const MAX_PASSES = 4;

export interface Orthonormalized {
  /** m×k, orthonormal columns (zero block when Y = 0); a new tensor the caller disposes. */
  q: DeviceMatrix;
  /** k×k upper-triangular float64 with Y ≈ Q·R. */
  r: Float64Array;
}

/** The small host factors multiply in full float32: CholeskyQR2's accuracy rests on it. */
const SMALL: { precision: Precision } = { precision: 'fp32' };

/** M·S for a small host matrix S (k×k', float64 rounded to float32), as a new device matrix. */
export async function multiplySmall(device: ComputeDevice, m: DeviceMatrix, s: Float64Array, rows: number, cols: number): Promise<DeviceMatrix> {
  const small = await device.upload(toMatrix(s, rows, cols));
  try {
    return await device.matmul(m, small, SMALL);
  } finally {
    small.dispose();
  }
}

export interface OrthonormalizeOptions {
  /**
   * Clean (unshifted) Cholesky passes: 2 (CholeskyQR2, the default) for a basis that must be
   * orthonormal to float32 working precision; 1 for the intermediate bases of a power
   * iteration, which only have to keep the columns apart (each pass costs a round trip).
   */
  passes?: 1 | 2;
  /** Accumulate R (Y = Q·R); without it `r` is only the last pass's factor. */
  wantR?: boolean;
}

/**
 * CholeskyQR2: Gram in float64 (device), Cholesky and R⁻¹ in float64 (here), Y·R⁻¹ in float32
 * (device). Because only the product is float32, one pass leaves an orthogonality error of
 * ~u₃₂·κ(Y) and the second pass removes it. A numerically singular Gram (rank-deficient D)
 * gets a shifted first pass and then the clean passes. `y` is left as it is.
 */
export async function orthonormalize(device: ComputeDevice, y: DeviceMatrix, options: OrthonormalizeOptions = {}): Promise<Orthonormalized> {
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
      const g = await device.gram(current);
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
        return { q: await device.zeros(y.rows, k), r: new Float64Array(k * k) };
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
      const next = await multiplySmall(device, current, invertUpperTriangular(res.r, k), k, k);
      dropCurrent();
      current = next;
      rTotal = rTotal && options.wantR ? multiply(res.r, rTotal, k, k, k) : res.r;
    }
  } catch (e) {
    dropCurrent();
    throw e;
  }
  // Every pass that does not return early multiplies, so `current` is a new tensor here.
  return { q: current, r: rTotal ?? new Float64Array(k * k) };
}

export interface Ritz {
  /** All k singular values of B = QᵀD, descending. */
  sigma: Float64Array;
  /** k×k left singular vectors of B (columns), row-major. */
  w: Float64Array;
}

/**
 * Singular values and left vectors of B = QᵀD from bt = DᵀQ (= Bᵀ, n×k): the Gram BBᵀ = btᵀ·bt
 * is k×k (float64 from the backend) and its Jacobi eigenpairs are (σ², W). Squaring costs
 * relative accuracy only for σᵢ < √u₆₄·σ₁ ≈ 1e-8·σ₁, far below float32 resolution of D.
 */
export async function ritz(device: ComputeDevice, bt: DeviceMatrix): Promise<Ritz> {
  const k = bt.cols;
  const g = await device.gram(bt);
  const { values, vectors } = symmetricEigen(g, k);
  const sigma = new Float64Array(k);
  for (let i = 0; i < k; i++) sigma[i] = Math.sqrt(Math.max(values[i], 0));
  return { sigma, w: vectors };
}

// Singular values below this fraction of σ₁ are float32 noise (D's entries carry ~6e-8
// relative error and every product adds more): their V = Bᵀw/σ would be amplified noise, so
// such components are returned as exact zeros (zero σ, zero U and V columns).
export const NOISE_FLOOR_REL = 1e-6;

/** The rank-r truncated SVD D ≈ (Q·W)·Σ·(Bᵀ·W·Σ⁻¹)ᵀ from a projection (q and bt are left as they are). */
export async function assemble(device: ComputeDevice, q: DeviceMatrix, bt: DeviceMatrix, rz: Ritz, rank: number): Promise<SvdResult> {
  const k = q.cols;
  const r = Math.min(rank, k);
  const floor = rz.sigma[0] * NOISE_FLOOR_REL;
  const S = new Float64Array(r);
  const spectrum = Float64Array.from(rz.sigma);
  for (let j = 0; j < k; j++) if (!(spectrum[j] > floor)) spectrum[j] = 0;
  const wU = new Float64Array(k * r);
  const wV = new Float64Array(k * r);
  for (let j = 0; j < r; j++) {
    const s = spectrum[j];
    if (s === 0) continue;
    S[j] = s;
    for (let i = 0; i < k; i++) {
      wU[i * r + j] = rz.w[i * k + j];
      wV[i * r + j] = rz.w[i * k + j] / s;
    }
  }
  const U = await multiplySmall(device, q, wU, k, r);
  try {
    const V = await multiplySmall(device, bt, wV, k, r);
    return { U, S, V, spectrum };
  } catch (e) {
    U.dispose();
    throw e;
  }
}
