// Small dense float64 linear algebra for the k×k matrices of the low-rank solvers
// (k ≈ rank + oversampling, a few hundred at most). All matrices are row-major
// Float64Arrays; everything O(m·n·k) goes through a LinalgBackend instead.
import { matrix, type Matrix } from './matrix';

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
  /** QL iterations taken (all eigenvalues together). */
  iterations: number;
}

/**
 * Eigendecomposition of a symmetric n×n matrix (only the upper triangle is read):
 * Householder reduction to tridiagonal form, then the implicit QL method with Wilkinson-type
 * shifts, accumulating the rotations. About 9n³ flops, several times fewer than cyclic Jacobi
 * (which this replaced: at n = 72 it was the main host cost of a GPU LoftQ step); eigenvalues
 * are accurate to rounding relative to ‖A‖, which is all the k×k Gram matrices need.
 */
export function symmetricEigen(input: Float64Array, n: number, maxIterations = 60 * Math.max(n, 1)): SymmetricEigen {
  // a: the matrix (symmetrized from the upper triangle), overwritten by the reduction's Q.
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      a[i * n + j] = input[i * n + j];
      a[j * n + i] = input[i * n + j];
    }
  }
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tridiagonalize(a, n, d, e);
  // Rows of zt are the columns of Q: each QL rotation then touches two contiguous rows.
  const zt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) zt[j * n + i] = a[i * n + j];
  const iterations = implicitQl(d, e, zt, n, maxIterations);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[j] - d[i]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const src = order[j];
    values[j] = d[src];
    for (let i = 0; i < n; i++) vectors[i * n + j] = zt[src * n + i];
  }
  return { values, vectors, iterations };
}

/**
 * Householder reduction A = Q·T·Qᵀ of a symmetric row-major n×n matrix, from the last row up:
 * d gets T's diagonal, e its subdiagonal (e[i] couples i−1 and i; e[0] = 0), and `a` is
 * overwritten by Q.
 */
function tridiagonalize(a: Float64Array, n: number, d: Float64Array, e: Float64Array): void {
  for (let i = n - 1; i > 0; i--) {
    const l = i - 1;
    const row = i * n;
    let h = 0;
    if (l > 0) {
      let scale = 0;
      for (let k = 0; k <= l; k++) scale += Math.abs(a[row + k]);
      if (scale === 0) {
        e[i] = a[row + l];
      } else {
        // The reflector is built from row i scaled by its 1-norm (no overflow, no underflow).
        for (let k = 0; k <= l; k++) {
          a[row + k] /= scale;
          h += a[row + k] * a[row + k];
        }
        let f = a[row + l];
        const g = f >= 0 ? -Math.sqrt(h) : Math.sqrt(h);
        e[i] = scale * g;
        h -= f * g;
        a[row + l] = f - g;
        f = 0;
        for (let j = 0; j <= l; j++) {
          // Column i above the diagonal keeps u/H for accumulating Q later.
          a[j * n + i] = a[row + j] / h;
          let s = 0;
          for (let k = 0; k <= j; k++) s += a[j * n + k] * a[row + k];
          for (let k = j + 1; k <= l; k++) s += a[k * n + j] * a[row + k];
          e[j] = s / h;
          f += e[j] * a[row + j];
        }
        const hh = f / (h + h);
        for (let j = 0; j <= l; j++) {
          const fj = a[row + j];
          const gj = e[j] - hh * fj;
          e[j] = gj;
          const rj = j * n;
          for (let k = 0; k <= j; k++) a[rj + k] -= fj * e[k] + gj * a[row + k];
        }
      }
    } else {
      e[i] = a[row + l];
    }
    d[i] = h;
  }
  d[0] = 0;
  e[0] = 0;
  // Accumulate Q in place, growing it one row and column at a time.
  for (let i = 0; i < n; i++) {
    const row = i * n;
    if (d[i] !== 0) {
      for (let j = 0; j < i; j++) {
        let g = 0;
        for (let k = 0; k < i; k++) g += a[row + k] * a[k * n + j];
        for (let k = 0; k < i; k++) a[k * n + j] -= g * a[k * n + i];
      }
    }
    d[i] = a[row + i];
    a[row + i] = 1;
    for (let j = 0; j < i; j++) {
      a[j * n + i] = 0;
      a[row + j] = 0;
    }
  }
}

/**
 * Eigenvalues of the symmetric tridiagonal (d, e) by implicit QL with shifts; d gets them,
 * and the rotations are applied to the rows of zt. Returns the iteration count.
 */
function implicitQl(d: Float64Array, e: Float64Array, zt: Float64Array, n: number, maxIterations: number): number {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  if (n > 0) e[n - 1] = 0;
  let iterations = 0;
  for (let l = 0; l < n; l++) {
    for (;;) {
      // The first negligible off-diagonal at or after l splits the matrix.
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= 2.220446049250313e-16 * dd) break;
      }
      if (m === l) break;
      if (++iterations > maxIterations) throw new Error('symmetric eigensolver did not converge');
      // Shift from the trailing 2×2 of the unreduced block at l.
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let underflow = false;
      for (let i = m - 1; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] -= p;
          e[m] = 0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        const ri = i * n;
        const rj = (i + 1) * n;
        for (let k = 0; k < n; k++) {
          const zf = zt[rj + k];
          const zi = zt[ri + k];
          zt[rj + k] = s * zi + c * zf;
          zt[ri + k] = c * zi - s * zf;
        }
      }
      if (underflow) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return iterations;
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
