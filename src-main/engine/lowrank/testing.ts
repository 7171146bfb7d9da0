// Plain float64 reference helpers for the low-rank tests (no backend, no shared code with the
// solvers under test, so a bug there cannot hide in the reference).
import { matrix, type Matrix } from '../tensor/matrix';
import { Rng } from '../util/random';

/** A fresh seed per run (override with LOWRANK_SEED=… to replay a failure). */
export function testSeed(): number {
  const fixed = process.env.LOWRANK_SEED;
  return fixed ? Number(fixed) : Math.floor(Math.random() * 2 ** 31);
}

/** m×p (row-major) with orthonormal columns: Gaussian columns, modified Gram–Schmidt twice. */
export function randomOrthonormal(rng: Rng, m: number, p: number): Float64Array {
  const q = rng.fillNormal(new Float64Array(m * p)) as Float64Array;
  for (let j = 0; j < p; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let l = 0; l < j; l++) {
        let s = 0;
        for (let i = 0; i < m; i++) s += q[i * p + l] * q[i * p + j];
        for (let i = 0; i < m; i++) q[i * p + j] -= s * q[i * p + l];
      }
    }
    let s = 0;
    for (let i = 0; i < m; i++) s += q[i * p + j] * q[i * p + j];
    s = Math.sqrt(s);
    for (let i = 0; i < m; i++) q[i * p + j] /= s;
  }
  return q;
}

/**
 * D = U·diag(s)·Vᵀ with random orthonormal U, V, computed in float64 and rounded to float32.
 * Returns the float32 input and ‖D₃₂ − D₆₄‖_F, which bounds |σᵢ(D₃₂) − sᵢ| (Weyl).
 */
export function withSpectrum(rng: Rng, m: number, n: number, s: ArrayLike<number>): { d: Matrix; roundingNorm: number } {
  const p = s.length;
  const u = randomOrthonormal(rng, m, p);
  const v = randomOrthonormal(rng, n, p);
  const d64 = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let l = 0; l < p; l++) {
      const c = u[i * p + l] * s[l];
      if (c === 0) continue;
      for (let j = 0; j < n; j++) d64[i * n + j] += c * v[j * p + l];
    }
  }
  const d = matrix(m, n, Float32Array.from(d64));
  let e = 0;
  for (let i = 0; i < d64.length; i++) e += (d.data[i] - d64[i]) ** 2;
  return { d, roundingNorm: Math.sqrt(e) };
}

/** ‖D − U·diag(S)·Vᵀ‖_F in float64. */
export function reconstructionError(d: Matrix, svd: { U: Matrix; S: ArrayLike<number>; V: Matrix }): number {
  const { rows: m, cols: n } = d;
  const r = svd.S.length;
  const u = svd.U.data;
  const v = svd.V.data;
  const row = new Float64Array(n);
  let ss = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) row[j] = d.data[i * n + j];
    for (let l = 0; l < r; l++) {
      const c = u[i * r + l] * svd.S[l];
      if (c === 0) continue;
      for (let j = 0; j < n; j++) row[j] -= c * v[j * r + l];
    }
    for (let j = 0; j < n; j++) ss += row[j] * row[j];
  }
  return Math.sqrt(ss);
}

/** max |MᵀM − I| over the columns of M (columns listed in `cols`, default all). */
export function orthonormalityError(mat: Matrix, cols = mat.cols): number {
  const { rows, cols: stride, data } = mat;
  let worst = 0;
  for (let a = 0; a < cols; a++) {
    for (let b = a; b < cols; b++) {
      let s = 0;
      for (let i = 0; i < rows; i++) s += data[i * stride + a] * data[i * stride + b];
      worst = Math.max(worst, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

/** Largest |xᵢ − yᵢ|/|yᵢ| over the first `count` entries. */
export function maxRelativeDiff(x: ArrayLike<number>, y: ArrayLike<number>, count: number): number {
  let worst = 0;
  for (let i = 0; i < count; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.abs(y[i]));
  return worst;
}

export function allFinite(...arrays: ArrayLike<number>[]): boolean {
  return arrays.every((a) => Array.prototype.every.call(a, (x: number) => Number.isFinite(x)));
}

export function gaussianMatrix(rng: Rng, m: number, n: number, scale = 1): Matrix {
  return matrix(m, n, rng.fillNormal(new Float32Array(m * n), scale) as Float32Array);
}
