import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { cholesky, fromMatrix, invertUpperTriangular, multiply, symmetricEigen, toMatrix } from './dense';
import { randomOrthonormal, testSeed } from '../lowrank/testing';

// Everything here is float64 on small well-conditioned inputs (κ ≲ 1e3), so residuals sit at
// ~n·κ·1e-16; 1e-11..1e-12 bounds leave a wide margin without hiding real errors (a wrong
// sign or index gives O(1)).
const seed = testSeed();
const why = `seed ${seed} (replay with LOWRANK_SEED=${seed})`;

function transposeSquare(a: Float64Array, n: number): Float64Array {
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = a[i * n + j];
  return t;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (const x of a) m = Math.max(m, Math.abs(x));
  return m;
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Q·diag(λ)·Qᵀ with a random orthogonal Q. */
function symmetricWithSpectrum(rng: Rng, lambda: number[]): Float64Array {
  const n = lambda.length;
  const q = randomOrthonormal(rng, n, n);
  const ql = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) ql[i * n + j] = q[i * n + j] * lambda[j];
  return multiply(ql, transposeSquare(q, n), n, n, n);
}

function identity(n: number): Float64Array {
  const e = new Float64Array(n * n);
  for (let i = 0; i < n; i++) e[i * n + i] = 1;
  return e;
}

describe('cholesky', () => {
  it('factors an SPD matrix: RᵀR = A, R upper-triangular', () => {
    const rng = new Rng(seed);
    const n = 60;
    const a = symmetricWithSpectrum(rng, Array.from({ length: n }, (_, i) => 1 + 999 * rng.uniform() * (i % 2)));
    const res = cholesky(a, n);
    expect(res.ok, why).toBe(true);
    if (!res.ok) return;
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(res.r[i * n + j]).toBe(0);
    const rtr = multiply(transposeSquare(res.r, n), res.r, n, n, n);
    expect(maxAbsDiff(rtr, a) / maxAbs(a), why).toBeLessThan(1e-12);
  });

  it('signals the first non-positive pivot of an indefinite matrix', () => {
    const rng = new Rng(seed);
    const a = symmetricWithSpectrum(rng, [3, 2, 1, -0.5]);
    const res = cholesky(a, 4);
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.pivot).toBeGreaterThanOrEqual(0);
    expect(res.pivot).toBeLessThan(4);
    expect(res.value).toBeLessThanOrEqual(0);
  });

  it('rejects a singular PSD matrix under a relative pivot threshold, and a shift repairs it', () => {
    const rng = new Rng(seed);
    const n = 12;
    // Rank 3: the pivots after the third are rounding noise (~1e-16 of the scale).
    const a = symmetricWithSpectrum(rng, [5, 4, 3, ...new Array(n - 3).fill(0)]);
    const rejected = cholesky(a, n, { minPivot: 1e-12 * 5 });
    expect(rejected.ok, why).toBe(false);
    if (!rejected.ok) expect(rejected.pivot, why).toBeGreaterThanOrEqual(3);
    const shifted = cholesky(a, n, { shift: 1e-6 });
    expect(shifted.ok, why).toBe(true);
    if (!shifted.ok) return;
    const rtr = multiply(transposeSquare(shifted.r, n), shifted.r, n, n, n);
    for (let i = 0; i < n; i++) a[i * n + i] += 1e-6;
    expect(maxAbsDiff(rtr, a) / 5, why).toBeLessThan(1e-12);
  });

  it('reports NaN input as a failure rather than propagating it', () => {
    const res = cholesky(Float64Array.from([NaN, 0, 0, 1]), 2);
    expect(res.ok).toBe(false);
  });
});

describe('invertUpperTriangular', () => {
  it('R·R⁻¹ = R⁻¹·R = I', () => {
    const rng = new Rng(seed);
    const n = 50;
    const a = symmetricWithSpectrum(rng, Array.from({ length: n }, () => 0.5 + 10 * rng.uniform()));
    const res = cholesky(a, n);
    if (!res.ok) throw new Error(why);
    const inv = invertUpperTriangular(res.r, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(inv[i * n + j]).toBe(0);
    expect(maxAbsDiff(multiply(res.r, inv, n, n, n), identity(n)), why).toBeLessThan(1e-12);
    expect(maxAbsDiff(multiply(inv, res.r, n, n, n), identity(n)), why).toBeLessThan(1e-12);
  });
});

describe('symmetricEigen', () => {
  it('recovers a known spectrum (negative, repeated and zero eigenvalues) with orthonormal vectors', () => {
    const rng = new Rng(seed);
    const n = 40;
    const lambda = Array.from({ length: n }, (_, i) => (i < 5 ? 2 : i < 8 ? 0 : 10 * rng.normal()));
    const a = symmetricWithSpectrum(rng, lambda);
    const { values, vectors } = symmetricEigen(a, n);
    const expected = [...lambda].sort((x, y) => y - x);
    const scale = Math.max(...lambda.map(Math.abs));
    for (let i = 0; i < n; i++) expect(Math.abs(values[i] - expected[i]) / scale, why).toBeLessThan(1e-12);
    for (let i = 1; i < n; i++) expect(values[i]).toBeLessThanOrEqual(values[i - 1]);
    // A·V = V·Λ and VᵀV = I.
    const av = multiply(a, vectors, n, n, n);
    const vl = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vl[i * n + j] = vectors[i * n + j] * values[j];
    expect(maxAbsDiff(av, vl) / scale, why).toBeLessThan(1e-12);
    expect(maxAbsDiff(multiply(transposeSquare(vectors, n), vectors, n, n, n), identity(n)), why).toBeLessThan(1e-12);
  });

  it('handles a general random symmetric matrix, diagonal input and n = 1', () => {
    const rng = new Rng(seed);
    const n = 70;
    const a = rng.fillNormal(new Float64Array(n * n)) as Float64Array;
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i];
    const { values, vectors } = symmetricEigen(a, n);
    const av = multiply(a, vectors, n, n, n);
    let worst = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(av[i * n + j] - vectors[i * n + j] * values[j]));
    expect(worst / maxAbs(a), why).toBeLessThan(1e-11);

    const diag = symmetricEigen(Float64Array.from([1, 0, 0, 0, 3, 0, 0, 0, 2]), 3);
    expect(Array.from(diag.values)).toEqual([3, 2, 1]);
    expect(Array.from(symmetricEigen(Float64Array.from([-4]), 1).values)).toEqual([-4]);
  });
});

describe('Matrix conversion', () => {
  it('round-trips float32-representable values and slices columns by stride', () => {
    const a = Float64Array.from([1, 2, 3, 4, 5, 6]);
    const m = toMatrix(a, 2, 3);
    expect(m.rows).toBe(2);
    expect(m.cols).toBe(3);
    expect(Array.from(fromMatrix(m))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(toMatrix(a, 2, 2, 3).data)).toEqual([1, 2, 4, 5]);
  });
});
