// Exact truncated SVD. Small matrices: one-sided Jacobi in float64 on the host (exact to
// rounding, high relative accuracy). Large matrices: block subspace iteration on the device,
// run to convergence; since D and every product are float32 there, "exact" means converged
// to float32 working precision, not float64 rounding. Every product is full float32.
import type { ComputeDevice, DeviceMatrix } from '../tensor/device';
import { checkRank, startBlock } from './randomized-svd';
import { assemble, multiplySmall, NOISE_FLOOR_REL, orthonormalize, ritz, type Ritz, type SvdResult } from './subspace';
import { toMatrix } from '../tensor/dense';

const FP32 = { precision: 'fp32' } as const;

/** Largest min(m, n) factored by Jacobi in TypeScript; above it the device iteration runs. */
export const JACOBI_MAX_DIM = 512;

export interface ExactSvdOptions {
  /** Subspace rounds at most (large path; default 200). */
  maxRounds?: number;
  /** Extra block columns beyond the rank (large path; default 16). */
  extraColumns?: number;
  /** Called after every round of the large path (progress, diagnostics). */
  onRound?: (round: number, info: { sigmaChange: number; residual: number }) => void;
}

export async function exactSvd(device: ComputeDevice, d: DeviceMatrix, rank: number, options: ExactSvdOptions = {}): Promise<SvdResult> {
  const { rows: m, cols: n } = d;
  checkRank(rank, m, n);
  const r = Math.min(rank, m, n);
  if (Math.min(m, n) <= JACOBI_MAX_DIM) {
    const host = await device.download(d);
    for (const x of host.data) if (!Number.isFinite(x)) throw new Error('low-rank solver: the matrix contains NaN or infinite values');
    const { u, s, v, p } = jacobiSvd(Float64Array.from(host.data), m, n);
    const U = await device.upload(toMatrix(u, m, r, p));
    try {
      return { U, S: s.slice(0, r), V: await device.upload(toMatrix(v, n, r, p)), spectrum: s };
    } catch (e) {
      U.dispose();
      throw e;
    }
  }
  return subspaceIterationSvd(device, d, r, options);
}

/**
 * SVD of a row-major m×n float64 matrix: column-pivoted Householder QR, then one-sided
 * (Hestenes) Jacobi on Rᵀ (Drmač–Veselić preconditioning: the rows of R are closer to
 * orthogonal, so fewer sweeps are needed, 10 instead of 17 on a 600×700 low-rank-plus-noise
 * test, and tall inputs shrink to p×p). Accurate to float64 rounding. Returns p = min(m, n)
 * triplets, descending; u is m×p and v is n×p (row-major); a zero singular value gets a
 * zero column on the shorter side (v when m ≥ n, u otherwise).
 */
export function jacobiSvd(a: Float64Array, m: number, n: number): { u: Float64Array; s: Float64Array; v: Float64Array; p: number } {
  // Factor X = A (tall) or Aᵀ (wide), stored column-major: len rows, p ≤ len columns.
  const wide = n > m;
  const p = wide ? m : n;
  const len = wide ? n : m;
  const x = new Float64Array(p * len);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      if (wide) x[i * len + j] = a[i * n + j];
      else x[j * len + i] = a[i * n + j];
    }
  }

  // X·P = Q·R. Reflector j is I − τⱼ·vⱼvⱼᵀ on rows j.., vⱼ kept in x below the diagonal
  // (with vⱼ[0] in `head`), R on and above it.
  const perm = Int32Array.from({ length: p }, (_, j) => j);
  const tau = new Float64Array(p);
  const head = new Float64Array(p);
  for (let j = 0; j < p; j++) {
    // Exact remaining norms each step (rather than downdates): simpler and never stale.
    let best = j;
    let bestNorm = -1;
    for (let c = j; c < p; c++) {
      const nrm = dot(x, c * len + j, c * len + j, len - j);
      if (nrm > bestNorm) {
        bestNorm = nrm;
        best = c;
      }
    }
    if (best !== j) {
      swapColumns(x, j * len, best * len, len);
      const t = perm[j];
      perm[j] = perm[best];
      perm[best] = t;
    }
    const col = j * len;
    const norm = Math.sqrt(bestNorm);
    if (norm === 0) continue; // the rest is zero: τ = 0, R's trailing block stays 0
    const x0 = x[col + j];
    const alpha = x0 > 0 ? -norm : norm; // sign choice avoids cancellation in v₀ = x₀ − α
    const v0 = x0 - alpha;
    // v = x − α·e₁, and H = I − (2/vᵀv)·vvᵀ maps x to α·e₁.
    const vtv = v0 * v0 + (bestNorm - x0 * x0);
    tau[j] = 2 / vtv;
    head[j] = v0;
    x[col + j] = alpha;
    for (let c = j + 1; c < p; c++) {
      const cc = c * len;
      let w = v0 * x[cc + j];
      for (let i = j + 1; i < len; i++) w += x[col + i] * x[cc + i];
      w *= tau[j];
      x[cc + j] -= w * v0;
      for (let i = j + 1; i < len; i++) x[cc + i] -= w * x[col + i];
    }
  }

  // Jacobi works on the columns of Rᵀ, i.e. the rows of R (p×p, column-major in `w`).
  const w = new Float64Array(p * p);
  for (let i = 0; i < p; i++) for (let l = i; l < p; l++) w[i * p + l] = x[l * len + i];
  const z = new Float64Array(p * p);
  for (let j = 0; j < p; j++) z[j * p + j] = 1;
  oneSidedJacobi(w, z, p, p);

  // Rᵀ·Z = Ŵ·Σ, so R = Z·Σ·Ŵᵀ and X = (Q·Z)·Σ·(P·Ŵ)ᵀ.
  const sigma = new Float64Array(p);
  for (let j = 0; j < p; j++) sigma[j] = Math.sqrt(dot(w, j * p, j * p, p));
  const order = Array.from({ length: p }, (_, j) => j).sort((i, j) => sigma[j] - sigma[i]);
  const s = new Float64Array(p);
  // Left vectors of X: Q·[Z; 0], applying the reflectors last-to-first (column-major len×p).
  const left = new Float64Array(len * p);
  const right = new Float64Array(p * p); // row-major, rows in X's original column order
  for (let jj = 0; jj < p; jj++) {
    const j = order[jj];
    s[jj] = sigma[j];
    for (let i = 0; i < p; i++) left[jj * len + i] = z[j * p + i];
    const inv = sigma[j] > 0 ? 1 / sigma[j] : 0;
    for (let i = 0; i < p; i++) right[perm[i] * p + jj] = w[j * p + i] * inv;
  }
  for (let j = p - 1; j >= 0; j--) {
    if (tau[j] === 0) continue;
    const col = j * len;
    for (let c = 0; c < p; c++) {
      const cc = c * len;
      let t = head[j] * left[cc + j];
      for (let i = j + 1; i < len; i++) t += x[col + i] * left[cc + i];
      t *= tau[j];
      left[cc + j] -= t * head[j];
      for (let i = j + 1; i < len; i++) left[cc + i] -= t * x[col + i];
    }
  }
  const leftRowMajor = new Float64Array(len * p);
  for (let c = 0; c < p; c++) for (let i = 0; i < len; i++) leftRowMajor[i * p + c] = left[c * len + i];
  // For X = Aᵀ the roles swap: A = (P·Ŵ)·Σ·(Q·Z)ᵀ.
  return wide ? { u: right, s, v: leftRowMajor, p } : { u: leftRowMajor, s, v: right, p };
}

/**
 * Rotates pairs of the p columns of w (column-major, length len) until all are mutually
 * orthogonal, applying the same rotations to the columns of z (p×p).
 */
function oneSidedJacobi(w: Float64Array, z: Float64Array, len: number, p: number): void {
  // A pair counts as orthogonal when |cos| ≤ len·u₆₄: the usual criterion for Jacobi's
  // high relative accuracy.
  const tol = len * 2.220446049250313e-16;
  const norms = new Float64Array(p);
  for (let sweep = 0; sweep < 80; sweep++) {
    // Recomputed every sweep: the cheap in-sweep updates below drift with rounding.
    for (let j = 0; j < p; j++) norms[j] = dot(w, j * len, j * len, len);
    let rotated = false;
    for (let i = 0; i < p - 1; i++) {
      for (let j = i + 1; j < p; j++) {
        const alpha = norms[i];
        const beta = norms[j];
        if (alpha === 0 || beta === 0) continue;
        const gamma = dot(w, i * len, j * len, len);
        if (Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const sn = c * t;
        rotate(w, i * len, j * len, len, c, sn);
        rotate(z, i * p, j * p, p, c, sn);
        norms[i] = alpha - t * gamma;
        norms[j] = beta + t * gamma;
      }
    }
    if (!rotated) break;
  }
}

function swapColumns(x: Float64Array, a: number, b: number, len: number): void {
  for (let i = 0; i < len; i++) {
    const t = x[a + i];
    x[a + i] = x[b + i];
    x[b + i] = t;
  }
}

// dot and rotate are Jacobi's whole inner loop; unrolled by 4 for instruction-level
// parallelism (about 1.5× faster in V8 than the plain loops).
function dot(x: Float64Array, a: number, b: number, len: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < len; i += 4) {
    s0 += x[a + i] * x[b + i];
    s1 += x[a + i + 1] * x[b + i + 1];
    s2 += x[a + i + 2] * x[b + i + 2];
    s3 += x[a + i + 3] * x[b + i + 3];
  }
  for (; i < len; i++) s0 += x[a + i] * x[b + i];
  return s0 + s1 + (s2 + s3);
}

function rotate(x: Float64Array, a: number, b: number, len: number, c: number, s: number): void {
  let i = 0;
  for (; i + 1 < len; i += 2) {
    const xa0 = x[a + i];
    const xb0 = x[b + i];
    const xa1 = x[a + i + 1];
    const xb1 = x[b + i + 1];
    x[a + i] = c * xa0 - s * xb0;
    x[b + i] = s * xa0 + c * xb0;
    x[a + i + 1] = c * xa1 - s * xb1;
    x[b + i + 1] = s * xa1 + c * xb1;
  }
  for (; i < len; i++) {
    const xa = x[a + i];
    const xb = x[b + i];
    x[a + i] = c * xa - s * xb;
    x[b + i] = s * xa + c * xb;
  }
}

// Stopping test of the subspace iteration. Ritz values converge like the square of the
// vectors, so the value test is the strict one; the residual test guards the vectors. A
// change below one float32 ulp of σ₁ counts as converged too: the products are float32,
// so small values keep fluctuating at that level (measured ~1e-2·u₃₂·σ₁) and would
// otherwise never pass a purely relative test.
const SIGMA_REL_TOL = 1e-7;
const U32 = 2 ** -24;
const RESIDUAL_REL_TOL = 1e-4;
const START_SEED = 0x5eed;

/**
 * Block subspace iteration Q ← orth(D·orth(DᵀQ)) with block k = rank + 16, re-orthonormalized
 * after every product. Each round reuses its DᵀQ product three times: as the Rayleigh–Ritz
 * projection (Ritz values σ and vectors), as the next right block, and, through Y = D·orth(DᵀQ),
 * for the residual ‖D·vᵢ − σᵢ·uᵢ‖ at no extra pass over D.
 */
async function subspaceIterationSvd(device: ComputeDevice, d: DeviceMatrix, r: number, options: ExactSvdOptions): Promise<SvdResult> {
  const { rows: m, cols: n } = d;
  const k = Math.min(r + (options.extraColumns ?? 16), m, n);
  const maxRounds = options.maxRounds ?? 200;
  let q: DeviceMatrix;
  const omega = await startBlock(device, n, k, START_SEED);
  try {
    const y0 = await device.matmul(d, omega, FP32);
    try {
      q = (await orthonormalize(device, y0)).q;
    } finally {
      y0.dispose();
    }
  } finally {
    omega.dispose();
  }
  let prev: Float64Array | null = null;
  try {
    for (let round = 1; ; round++) {
      const bt = await device.matmul(d, q, { transA: true, ...FP32 });
      try {
        const rz = await ritz(device, bt);
        const sigma1 = rz.sigma[0];
        if (sigma1 === 0) return { ...(await assemble(device, q, bt, rz, r)), rounds: round, converged: true };

        // sigmaChange: largest relative change (reported); settled: every change within tolerance.
        let sigmaChange = Infinity;
        let settled = false;
        if (prev) {
          sigmaChange = 0;
          settled = true;
          for (let i = 0; i < r; i++) {
            const change = Math.abs(rz.sigma[i] - prev[i]);
            if (rz.sigma[i] > 0) sigmaChange = Math.max(sigmaChange, change / rz.sigma[i]);
            if (change > SIGMA_REL_TOL * rz.sigma[i] + U32 * sigma1) settled = false;
          }
        }
        prev = rz.sigma.slice(0, r);

        const z = await orthonormalize(device, bt, { wantR: true });
        let y: DeviceMatrix;
        try {
          y = await device.matmul(d, z.q, FP32);
        } finally {
          z.q.dispose();
        }
        try {
          const residual = (await residualNorm(device, q, y, z.r!, rz, r)) / sigma1;
          options.onRound?.(round, { sigmaChange, residual });
          const converged = settled && residual < RESIDUAL_REL_TOL;
          if (converged || round >= maxRounds) return { ...(await assemble(device, q, bt, rz, r)), rounds: round, converged };
          const next = (await orthonormalize(device, y)).q;
          q.dispose();
          q = next;
        } finally {
          y.dispose();
        }
      } finally {
        bt.dispose();
      }
    }
  } finally {
    q.dispose();
  }
}

/**
 * max over the top r of ‖D·vᵢ − σᵢ·uᵢ‖ with uᵢ = Q·wᵢ and vᵢ = Dᵀuᵢ/σᵢ = Z·R·wᵢ/σᵢ, so
 * D·vᵢ = Y·(R·wᵢ/σᵢ) where Y = D·Z was computed anyway. (Dᵀuᵢ = σᵢvᵢ holds by construction.)
 */
async function residualNorm(device: ComputeDevice, q: DeviceMatrix, y: DeviceMatrix, rz: Float64Array, ritzPairs: Ritz, r: number): Promise<number> {
  const k = q.cols;
  const m1 = new Float64Array(k * r);
  const m2 = new Float64Array(k * r);
  // Components under the noise floor are returned as zeros, so they have no residual.
  const floor = ritzPairs.sigma[0] * NOISE_FLOOR_REL;
  for (let j = 0; j < r; j++) {
    const s = ritzPairs.sigma[j];
    if (!(s > floor)) continue;
    for (let i = 0; i < k; i++) {
      let acc = 0;
      for (let l = i; l < k; l++) acc += rz[i * k + l] * ritzPairs.w[l * k + j];
      m1[i * r + j] = acc / s;
      m2[i * r + j] = ritzPairs.w[i * k + j] * s;
    }
  }
  // D·V − U·Σ = Y·M1 − Q·M2, its column norms from the diagonal of its Gram.
  const dvm = await multiplySmall(device, y, m1, k, r);
  let diff: DeviceMatrix;
  try {
    const small = await device.upload(toMatrix(m2, k, r));
    try {
      diff = await device.lowRankResidual(dvm, q, small);
    } finally {
      small.dispose();
    }
  } finally {
    dvm.dispose();
  }
  let g: Float64Array;
  try {
    g = await device.gram(diff);
  } finally {
    diff.dispose();
  }
  const col = new Float64Array(r);
  for (let j = 0; j < r; j++) col[j] = Math.max(g[j * r + j], 0);
  let worst = 0;
  for (let j = 0; j < r; j++) worst = Math.max(worst, Math.sqrt(col[j]));
  return worst;
}
