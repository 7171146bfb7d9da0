import { describe, expect, it } from 'vitest';
import { describeOnDevices, hostSvd, withUploaded, type HostSvd } from '../../test-support/devices';
import type { ComputeDevice } from '../tensor/device';
import { matrix, type Matrix } from '../tensor/matrix';
import { Rng } from '../util/random';
import { symmetricEigen } from '../tensor/dense';
import { exactSvd, jacobiSvd, type ExactSvdOptions } from './exact-svd';
import { allFinite, gaussianMatrix, maxRelativeDiff, orthonormalityError, randomOrthonormal, reconstructionError, testSeed, withSpectrum } from './testing';

const seed = testSeed();
const why = `seed ${seed} (replay with LOWRANK_SEED=${seed})`;

function solver(device: () => ComputeDevice) {
  return (d: Matrix, rank: number, options?: ExactSvdOptions): Promise<HostSvd> =>
    withUploaded(device(), d, async (dd) => hostSvd(device(), await exactSvd(device(), dd, rank, options)));
}

/**
 * Independent reference: σᵢ = √λᵢ(DᵀD) with the Gram of D's exact float64 copy. Its relative
 * error is ~u₆₄·(σ₁/σᵢ)², i.e. < 1e-11 for the κ ≤ 300 spectra below.
 */
function gramSpectrum(d: Matrix): Float64Array {
  const { rows: m, cols: n } = d;
  const g = new Float64Array(n * n);
  for (let i = 0; i < m; i++) {
    for (let a = 0; a < n; a++) {
      const x = d.data[i * n + a];
      for (let b = a; b < n; b++) g[a * n + b] += x * d.data[i * n + b];
    }
  }
  for (let a = 0; a < n; a++) for (let b = 0; b < a; b++) g[a * n + b] = g[b * n + a];
  return Float64Array.from(symmetricEigen(g, n).values, (l) => Math.sqrt(Math.max(l, 0)));
}

function frobenius(d: Matrix): number {
  let s = 0;
  for (const x of d.data) s += x * x;
  return Math.sqrt(s);
}

describeOnDevices('exactSvd, Jacobi path (float64 on the host)', (device) => {
  const exactSvd = solver(device);
  for (const [m, n] of [
    [120, 90],
    [70, 130],
  ]) {
    it(`${m}x${n}: known spectrum to float64 rounding, orthonormal factors, optimal truncation`, async () => {
      const rng = new Rng(seed);
      const p = Math.min(m, n);
      const s = Array.from({ length: p }, (_, i) => 3 * Math.pow(0.95, i));
      const { d, roundingNorm } = withSpectrum(rng, m, n, s);
      const full = await exactSvd(d, p);
      expect(full.spectrum.length).toBe(p);
      // The float32 input is D₆₄ + E; Weyl bounds |σᵢ − sᵢ| by ‖E‖₂ ≤ ‖E‖_F (~1e-7 here).
      for (let i = 0; i < p; i++) expect(Math.abs(full.S[i] - s[i]), why).toBeLessThanOrEqual(roundingNorm + 1e-12);
      // Against the spectrum of the float32 matrix itself: agreement to ~1e-13 is expected;
      // 1e-10 is the brief's bar.
      const ref = n <= m ? gramSpectrum(d) : gramSpectrum({ rows: n, cols: m, data: transposeData(d) });
      expect(maxRelativeDiff(full.S, ref, p), why).toBeLessThan(1e-10);
      // U and V are rounded to float32 on return, so orthonormality and the reconstruction
      // are checked at float32 level (u₃₂·√p ≈ 1e-6).
      expect(orthonormalityError(full.U), why).toBeLessThan(2e-6);
      expect(orthonormalityError(full.V), why).toBeLessThan(2e-6);
      expect(reconstructionError(d, full) / frobenius(d), why).toBeLessThan(2e-6);

      const r = 10;
      const top = await exactSvd(d, r);
      expect(top.S.length).toBe(r);
      expect(top.U.cols).toBe(r);
      expect(top.V.cols).toBe(r);
      let tail = 0;
      for (let i = r; i < p; i++) tail += full.S[i] ** 2;
      expect(Math.abs(reconstructionError(d, top) - Math.sqrt(tail)) / Math.sqrt(tail), why).toBeLessThan(1e-5);
    });
  }

  it('rank-deficient and zero matrices give finite results', async () => {
    const rng = new Rng(seed);
    const s = [5, 3, 1];
    const { d, roundingNorm } = withSpectrum(rng, 60, 45, s);
    const svd = await exactSvd(d, 8);
    expect(allFinite(svd.U.data, svd.V.data, svd.S, svd.spectrum)).toBe(true);
    for (let i = 0; i < 3; i++) expect(Math.abs(svd.S[i] - s[i]), why).toBeLessThanOrEqual(roundingNorm + 1e-12);
    for (let i = 3; i < 8; i++) expect(svd.S[i], why).toBeLessThanOrEqual(roundingNorm + 1e-12);

    const zero = await exactSvd(matrix(20, 30), 4);
    expect(allFinite(zero.U.data, zero.V.data, zero.S, zero.spectrum)).toBe(true);
    expect(Array.from(zero.S)).toEqual([0, 0, 0, 0]);
    expect(reconstructionError(matrix(20, 30), zero)).toBe(0);
  });

  it('validates its input', async () => {
    await expect(exactSvd(matrix(4, 4), 0)).rejects.toThrow(/rank/);
    await expect(exactSvd(matrix(2, 2, Float32Array.from([1, Infinity, 0, 1])), 1)).rejects.toThrow(/infinite/);
  });
});

describe('jacobiSvd (float64, host)', () => {
  it('jacobiSvd itself is exact in float64: A = UΣVᵀ and UᵀU = VᵀV = I to ~1e-13', () => {
    const rng = new Rng(seed);
    for (const [m, n] of [
      [40, 25],
      [25, 40],
    ]) {
      const a = rng.fillNormal(new Float64Array(m * n)) as Float64Array;
      const { u, s, v, p } = jacobiSvd(a, m, n);
      let worst = 0;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let x = 0;
          for (let l = 0; l < p; l++) x += u[i * p + l] * s[l] * v[j * p + l];
          worst = Math.max(worst, Math.abs(x - a[i * n + j]));
        }
      }
      expect(worst, why).toBeLessThan(1e-12);
      for (const [f, rows] of [
        [u, m],
        [v, n],
      ] as const) {
        for (let x = 0; x < p; x++) {
          for (let y = x; y < p; y++) {
            let dot = 0;
            for (let i = 0; i < rows; i++) dot += f[i * p + x] * f[i * p + y];
            expect(Math.abs(dot - (x === y ? 1 : 0)), why).toBeLessThan(1e-12);
          }
        }
      }
    }
  });

  it('keeps high relative accuracy on a graded spectrum (σ from 1 down to 1e-8)', () => {
    const rng = new Rng(seed);
    const n = 30;
    const s = Array.from({ length: n }, (_, i) => Math.pow(10, (-8 * i) / (n - 1)));
    const q1 = randomOrthonormal(rng, n, n);
    const q2 = randomOrthonormal(rng, n, n);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let l = 0; l < n; l++) a[i * n + j] += q1[i * n + l] * s[l] * q2[j * n + l];
    const { s: got } = jacobiSvd(a, n, n);
    // Building A in float64 perturbs it by ~1e-16 absolute, i.e. up to ~1e-7 relative at
    // σ = 1e-8; Jacobi stays within that, where a Gram-based method (λ = σ² = 1e-16 next to
    // rounding of 1e-16) would be off by O(1).
    expect(maxRelativeDiff(got, s, n), why).toBeLessThan(1e-6);
  });

});

describeOnDevices('exactSvd, subspace-iteration path (float32 products on the device)', (device) => {
  const exactSvd = solver(device);
  // Two spectra: a moderate one (10·0.85ⁱ, rank 48, noise 1e-3: σ₁₆ ≈ 0.09·σ₁) and a graded
  // one (10^(−i/4), rank 40, noise 1e-7: σ₁₆ ≈ 2e-4·σ₁) where float32 products limit small
  // values to absolute, not relative, accuracy.
  const spectra = [
    { name: 'moderate decay', m: 530, n: 600, rank: 48, s: (i: number) => 10 * Math.pow(0.85, i), noise: 1e-3 },
    { name: 'graded', m: 600, n: 520, rank: 40, s: (i: number) => Math.pow(10, -i / 4), noise: 1e-7 },
  ];
  for (const c of spectra) {
    it(`${c.m}x${c.n}, ${c.name}: matches the Jacobi SVD of the same matrix to float32 working precision`, async () => {
      const rng = new Rng(seed);
      const { m, n } = c;
      const { d } = withSpectrum(rng, m, n, Array.from({ length: c.rank }, (_, i) => c.s(i)));
      const noise = gaussianMatrix(rng, m, n, c.noise);
      for (let i = 0; i < d.data.length; i++) d.data[i] += noise.data[i];
      const r = 16;
      const ref = jacobiSvd(Float64Array.from(d.data), m, n);
      const svd = await exactSvd(d, r);
      expect(svd.converged, why).toBe(true);
      expect(svd.rounds!, why).toBeLessThan(50);
      // Products are float32 (u₃₂ = 2⁻²⁴ ≈ 6e-8). Ritz values are second-order accurate:
      // ~1e-7 relative for large values, and ≲ 1e-2·u₃₂·σ₁ absolute for small ones, so the
      // bound is 1e-6 relative plus one float32 ulp of σ₁.
      const u32 = 2 ** -24;
      for (let i = 0; i < r; i++) expect(Math.abs(svd.S[i] - ref.s[i]), `σ${i + 1}, ${why}`).toBeLessThan(1e-6 * ref.s[i] + u32 * ref.s[0]);
      // Singular vectors: cos θᵢ = |⟨uᵢ, uᵢ_ref⟩|; sin θᵢ ≲ u₃₂·σ₁/gapᵢ ≤ 1e-3 for these gaps.
      for (let j = 0; j < r; j++) {
        let cu = 0;
        let cv = 0;
        for (let i = 0; i < m; i++) cu += svd.U.data[i * r + j] * ref.u[i * ref.p + j];
        for (let i = 0; i < n; i++) cv += svd.V.data[i * r + j] * ref.v[i * ref.p + j];
        expect(1 - Math.abs(cu), `u${j + 1}, ${why}`).toBeLessThan(1e-6);
        expect(1 - Math.abs(cv), `v${j + 1}, ${why}`).toBeLessThan(1e-6);
      }
      expect(orthonormalityError(svd.U), why).toBeLessThan(1e-4);
      expect(orthonormalityError(svd.V), why).toBeLessThan(1e-4);
      let tail = 0;
      for (let i = r; i < ref.p; i++) tail += ref.s[i] ** 2;
      expect(reconstructionError(d, svd) / Math.sqrt(tail), why).toBeLessThan(1 + 1e-4);
    });
  }

  it('returns zeros for a zero matrix and is deterministic', async () => {
    const zero = await exactSvd(matrix(520, 540), 6);
    expect(allFinite(zero.U.data, zero.V.data, zero.S)).toBe(true);
    expect(Array.from(zero.S).every((x) => x === 0)).toBe(true);

    const rng = new Rng(seed);
    const d = gaussianMatrix(rng, 520, 530);
    const options = { maxRounds: 3 };
    const a = await exactSvd(d, 4, options);
    const b = await exactSvd(d, 4, options);
    expect(a.rounds).toBe(3);
    expect(Array.from(b.S)).toEqual(Array.from(a.S));
    expect(Array.from(b.U.data)).toEqual(Array.from(a.U.data));
  });
});

function transposeData(d: Matrix): Float32Array {
  const t = new Float32Array(d.data.length);
  for (let i = 0; i < d.rows; i++) for (let j = 0; j < d.cols; j++) t[j * d.rows + i] = d.data[i * d.cols + j];
  return t;
}
