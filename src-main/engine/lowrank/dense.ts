// Small dense float64 linear algebra for the k×k matrices of the low-rank solvers
// (k ≈ rank + oversampling, a few hundred at most). All matrices are row-major
// Float64Arrays; everything O(m·n·k) goes through a LinalgBackend instead.
import { matrix, type Matrix } from '../tensor/matrix';

export type CholeskyResult =
  | { ok: true; /** upper-triangular R with A + shift·I = RᵀR */ r: Float64Array }
  | { ok: false; /** index of the first pivot that was not positive enough */ pivot: number; /** its value before the square root */ value: number };

export interface CholeskyOptions {
  /** Added to the diagonal before factoring (shifted Cholesky). */
  shift?: number;
  /**
   * A pivot must exceed this (absolute) value; 0 accepts any positive pivot. Callers pass
   * a threshold relative to the matrix scale to reject numerically singular matrices.
   */
  minPivot?: number;
}

/** Cholesky factorization A = RᵀR of a symmetric n×n matrix (only the upper triangle is read). */
export function cholesky(a: Float64Array, n: number, options: CholeskyOptions = {}): CholeskyResult {
  const shift = options.shift ?? 0;
  const minPivot = options.minPivot ?? 0;
  const r = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j] + shift;
    for (let k = 0; k < j; k++) d -= r[k * n + j] * r[k * n + j];
    // `!(d > …)` also catches NaN.
    if (!(d > minPivot)) return { ok: false, pivot: j, value: d };
    const rjj = Math.sqrt(d);
    r[j * n + j] = rjj;
    for (let i = j + 1; i < n; i++) {
      let s = a[j * n + i];
      for (let k = 0; k < j; k++) s -= r[k * n + j] * r[k * n + i];
      r[j * n + i] = s / rjj;
    }
  }
  return { ok: true, r };
}

/** R⁻¹ of an upper-triangular n×n matrix with a nonzero diagonal (result is upper-triangular). */
export function invertUpperTriangular(r: Float64Array, n: number): Float64Array {
  const x = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    x[j * n + j] = 1 / r[j * n + j];
    for (let i = j - 1; i >= 0; i--) {
      let s = 0;
      for (let k = i + 1; k <= j; k++) s += r[i * n + k] * x[k * n + j];
      x[i * n + j] = -s / r[i * n + i];
    }
  }
  return x;
}

export interface SymmetricEigen {
  /** Eigenvalues, descending. */
  values: Float64Array;
  /** n×n row-major; column j is the unit eigenvector of values[j]. */
  vectors: Float64Array;
  sweeps: number;
}

/**
 * Eigendecomposition of a symmetric n×n matrix by cyclic Jacobi rotations. Slow for large n
 * (O(n³) per sweep, ~6–10 sweeps) but accurate to rounding and simple, which is what the
 * k×k Gram matrices of the SVD need.
 */
export function symmetricEigen(input: Float64Array, n: number, maxSweeps = 60): SymmetricEigen {
  const a = Float64Array.from(input);
  // Symmetrize from the upper triangle so a slightly asymmetric input is well defined.
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) a[j * n + i] = a[i * n + j];
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;

  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i] * a[i];
  const eps = 2.220446049250313e-16;
  let sweeps = 0;
  for (; sweeps < maxSweeps; sweeps++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
    // Off-diagonal mass below rounding of the whole matrix: the diagonal is converged.
    if (off <= eps * eps * total) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const app = a[p * n + p];
        const aqq = a[q * n + q];
        // Negligible next to both diagonal entries: zero it rather than rotate (standard
        // Jacobi threshold; keeps the late sweeps cheap).
        if (Math.abs(apq) <= eps * 0.5 * Math.sqrt(Math.abs(app * aqq)) && sweeps > 3) {
          a[p * n + q] = 0;
          a[q * n + p] = 0;
          continue;
        }
        const theta = (aqq - app) / (2 * apq);
        // Smaller-angle root of t² + 2θt − 1 = 0; for huge θ, t ≈ 1/(2θ) avoids overflow.
        const t = Math.abs(theta) > 1e150 ? 1 / (2 * theta) : Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          if (k === p || k === q) continue;
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          const nkp = c * akp - s * akq;
          const nkq = s * akp + c * akq;
          a[k * n + p] = nkp;
          a[p * n + k] = nkp;
          a[k * n + q] = nkq;
          a[q * n + k] = nkq;
        }
        a[p * n + p] = app - t * apq;
        a[q * n + q] = aqq + t * apq;
        a[p * n + q] = 0;
        a[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }

  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const src = order[j];
    values[j] = a[src * n + src];
    for (let i = 0; i < n; i++) vectors[i * n + j] = v[i * n + src];
  }
  return { values, vectors, sweeps };
}

/** C = A·B for small row-major float64 matrices (A m×k, B k×n). */
export function multiply(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      const bRow = p * n;
      const cRow = i * n;
      for (let j = 0; j < n; j++) c[cRow + j] += aip * b[bRow + j];
    }
  }
  return c;
}

/** Leading `cols` columns of a row-major rows×stride float64 matrix, as a float32 Matrix. */
export function toMatrix(a: Float64Array, rows: number, cols: number, stride = cols): Matrix {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = a[i * stride + j];
  return matrix(rows, cols, out);
}

/** A float32 Matrix widened to a row-major float64 array. */
export function fromMatrix(m: Matrix): Float64Array {
  return Float64Array.from(m.data);
}
