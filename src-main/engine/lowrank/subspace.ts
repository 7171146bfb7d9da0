// Building blocks shared by the randomized and the large exact solver: orthonormalizing a
// tall m×k block (CholeskyQR2) and extracting a truncated SVD from a projection B = QᵀD.
// The O(m·k²) work runs on the device; the k×k algebra runs here in float64.
import type { ComputeDevice, DeviceMatrix, Precision } from '../tensor/device';
import { hostCholeskyQr, multiplySmallWith, type CholeskyQrOptions } from '../tensor/cholesky-qr';
import { symmetricEigen } from '../tensor/dense';

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

export interface Orthonormalized {
  /** m×k, orthonormal columns (zero block when Y = 0); a new tensor the caller disposes. */
  q: DeviceMatrix;
  /** k×k upper-triangular float64 with Y ≈ Q·R (only with wantR). */
  r: Float64Array | null;
}

/** M·S for a small host matrix S (k×k', float64 rounded to float32), as a new device matrix. */
export function multiplySmall(device: ComputeDevice, m: DeviceMatrix, s: Float64Array, rows: number, cols: number): Promise<DeviceMatrix> {
  return multiplySmallWith(device, m, s, rows, cols);
}

/**
 * Orthonormal columns spanning Y (CholeskyQR, see cholesky-qr.ts). Without wantR the device
 * runs the passes itself (on a GPU with no host round trip per pass); with it they are driven
 * from the host, which keeps R.
 */
export async function orthonormalize(device: ComputeDevice, y: DeviceMatrix, options: CholeskyQrOptions = {}): Promise<Orthonormalized> {
  if (options.wantR) return hostCholeskyQr(device, y, options);
  return { q: await device.orthonormalize(y, options.passes ?? 2), r: null };
}

/**
 * One product of a power iteration, orthonormalized: orth(D·a), or orth(Dᵀ·a) with transA.
 * Intermediate bases need one CholeskyQR pass (they only keep the columns apart); a basis that
 * results are built from needs two. `a` is left as it is.
 */
export async function orthonormalProduct(device: ComputeDevice, d: DeviceMatrix, a: DeviceMatrix, transA: boolean, precision: Precision, passes: 1 | 2): Promise<DeviceMatrix> {
  const y = await device.matmul(d, a, { transA, precision });
  try {
    return (await orthonormalize(device, y, { passes })).q;
  } finally {
    y.dispose();
  }
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
