// LoftQ's alternating init (Li et al., 2023), with the LoRA scaling s honoured:
//   A = B = 0; repeat up to T times: Q ← q(W − s·B·A); U S Vᵀ ≈ W − Q (rank r);
//   B ← U·√S/√s, A ← √S·Vᵀ/√s,  so that Q + s·B·A ≈ W for any alpha.
// With absmax-scaled quantizers the alternation is not monotone (and diverges for large T),
// so every step's ‖W − Q − s·B·A‖ is measured, the best step is returned, and the loop stops
// at the first step that does not improve on the best by EARLY_STOP_REL.
// Everything stays on the device: per step one residual product, one fused quantize pass
// (which also measures the previous step's error: W − s·B_prev·A_prev − Q_prev is exactly
// the residual this step quantizes, minus Q_prev) and one low-rank solve. The first step's
// solve is a randomized SVD; later ones, by default, one subspace-iteration step from the
// previous step's right subspace (the residual moves little between steps): Q = orth(D·Z),
// L = Q·QᵀD, the rank-r projection, with no small eigenproblem on the host. The returned
// step's factors come from an SVD of its L. For the per-matrix metrics the returned step's
// residual W − Q − s·B·A is rebuilt once at the end and its leading singular values measured:
// the spectrum past r, what the adapter leaves.
import { CancelledError } from '../errors';
import { exactSvd, randomizedSvd, type SvdResult } from '../lowrank';
import { assemble, orthonormalProduct, ritz } from '../lowrank/subspace';
import { codebookFor } from '../quant/blockwise';
import { TensorScope, type ComputeDevice, type DeviceMatrix, type DeviceQuantized } from '../tensor/device';
import { SPECTRUM_TAIL } from './spectrum';
import type { Initializer, MatrixInitOptions, MatrixInitResult } from './types';

/** Power iterations of the randomized solver on the first step; later steps warm-start. */
const FIRST_STEP_POWER_ITERS = 2;
const WARM_POWER_ITERS = 1;
/** The same for subspace steps (the default): see docs/ARCHITECTURE.md for how they were chosen. */
const SUBSPACE_FIRST_POWER_ITERS = 2;
const SUBSPACE_WARM_POWER_ITERS = 1;
/**
 * With T = 1 no warm step refines the first one, so it gets enough passes to be the best rank r
 * (on the demo model at 2 bits, rank 16: 2 passes leave the error 2.1% above the exact SVD's,
 * 8 passes 0.2%; the planner's one-step prediction assumes the best rank r).
 */
const SUBSPACE_SINGLE_STEP_POWER_ITERS = 8;
/**
 * A step must lower the best error so far by this fraction, or the loop stops (the best step
 * is kept). One step without a real improvement ends it: later steps were measured to rise
 * further on the demo model and diverge for large T.
 */
export const EARLY_STOP_REL = 1e-4;

/**
 * One step's state: Q and a factorization s·B·A = bt·at of the low-rank term, either from an
 * SVD (bt = U·√S, at = √S·Vᵀ) or from a subspace step (bt = Q_L orthonormal, at = Q_Lᵀ·D, and
 * projection.bt = Dᵀ·Q_L, the right subspace the next step starts from).
 */
interface StepState {
  step: number;
  q: DeviceQuantized;
  bt: DeviceMatrix;
  at: DeviceMatrix;
  svd: SvdResult | null;
  projection: { q: DeviceMatrix; bt: DeviceMatrix } | null;
  /** Copies of the previous step's factors (null on step 1): Q = q(W − source.bt·source.at) is rebuilt from them. */
  source: { bt: DeviceMatrix; at: DeviceMatrix } | null;
}

/**
 * Subspace iteration of D from the right subspace z (n×r) with `powerIters` extra passes:
 * Q = orth(D·z), then Q ← orth(D·orth(DᵀQ)) per pass; returns Q and Bᵀ = DᵀQ, so that the
 * rank-r term is L = Q·QᵀD, the projection of D onto span(Q).
 */
async function subspaceStep(device: ComputeDevice, d: DeviceMatrix, z: DeviceMatrix, powerIters: number, options: MatrixInitOptions): Promise<{ q: DeviceMatrix; bt: DeviceMatrix }> {
  const precision = options.sketchPrecision ?? 'tf32';
  // The last basis is orthonormal to float32 precision (two passes): L projects onto it.
  const orth = (a: DeviceMatrix, transA: boolean, last: boolean) => orthonormalProduct(device, d, a, transA, precision, last ? 2 : 1);
  let q = await orth(z, false, powerIters === 0);
  try {
    for (let i = 0; i < powerIters; i++) {
      const zt = await orth(q, true, false);
      q.dispose();
      try {
        q = await orth(zt, false, i === powerIters - 1);
      } finally {
        zt.dispose();
      }
    }
    // Full float32: L = Q·(DᵀQ)ᵀ is what gets subtracted from W.
    return { q, bt: await device.matmul(d, q, { transA: true, precision: 'fp32' }) };
  } catch (e) {
    q.dispose();
    throw e;
  }
}

/** The SVD of a subspace step's L = Q·Bᵀᵀ (rank r): the small problem of B's Gram, on the host. */
async function svdOfProjection(device: ComputeDevice, p: { q: DeviceMatrix; bt: DeviceMatrix }, rank: number): Promise<SvdResult> {
  return assemble(device, p.q, p.bt, await ritz(device, p.bt), rank);
}

async function solve(device: ComputeDevice, d: DeviceMatrix, options: MatrixInitOptions, step: number, prev: SvdResult | null): Promise<SvdResult> {
  if (options.svd === 'exact') return exactSvd(device, d, options.rank);
  return randomizedSvd(device, d, {
    rank: options.rank,
    seed: options.seed + step,
    powerIters: prev ? (options.powerIters?.warm ?? WARM_POWER_ITERS) : (options.powerIters?.first ?? FIRST_STEP_POWER_ITERS),
    // The residual changes little between steps: the last right subspace is a far better
    // start than a random one, so fewer power iterations reach the same accuracy.
    warmStart: prev ?? undefined,
    sketchPrecision: options.sketchPrecision,
  });
}

/** B̃ = U·√S·c (out×r) and Ã = (V·√S·c)ᵀ (r×in); with c = 1, s·B·A = B̃·Ã. */
async function scaledFactors(device: ComputeDevice, svd: SvdResult, rank: number, c = 1): Promise<{ bt: DeviceMatrix; at: DeviceMatrix }> {
  const root = Array.from({ length: svd.U.cols }, (_, j) => (j < rank ? Math.sqrt(Math.max(svd.S[j] ?? 0, 0)) * c : 0));
  const bt = await device.scaleColumns(svd.U, root);
  try {
    const vs = await device.scaleColumns(svd.V, root);
    try {
      return { bt, at: await device.transpose(vs) };
    } finally {
      vs.dispose();
    }
  } catch (e) {
    bt.dispose();
    throw e;
  }
}

/**
 * The leading singular values of W − Q − s·B·A for the returned step: its Q rebuilt (the same
 * input gives the same codes), D = W − Q, the residual D − L, and a randomized SVD of it.
 * These continue the step's spectrum past r: what the rank-r term could not hold.
 */
async function leftOverSpectrum(
  device: ComputeDevice,
  w: DeviceMatrix,
  state: StepState,
  diff: DeviceMatrix,
  scratch: DeviceQuantized,
  codebook: ReturnType<typeof codebookFor>,
  options: MatrixInitOptions,
): Promise<number[]> {
  const k = Math.min(SPECTRUM_TAIL, Math.min(w.rows, w.cols) - options.rank);
  if (k <= 0) return [];
  const scope = new TensorScope();
  try {
    const x = state.source ? scope.track(await device.lowRankResidual(w, state.source.bt, state.source.at)) : w;
    await device.quantize(x, w, scratch, codebook, { diff });
    const left = scope.track(await device.lowRankResidual(diff, state.bt, state.at));
    const svd = await randomizedSvd(device, left, { rank: k, seed: options.seed + 7919, powerIters: 2, sketchPrecision: options.sketchPrecision });
    svd.U.dispose();
    svd.V.dispose();
    return Array.from(svd.S.slice(0, k));
  } finally {
    scope.dispose();
  }
}

export const loftqInit: Initializer = {
  method: 'loftq',
  async init(w, options, ctx): Promise<MatrixInitResult> {
    const { device } = ctx;
    const codebook = codebookFor(options.quant);
    const n = w.rows * w.cols;
    const norm = Math.sqrt(await device.sumSquares(w)) || 1;
    // Everything made here is tracked, so an error or a cancel frees it all.
    const scope = new TensorScope();
    const stepErrors: number[] = [];
    let errQ = 0;
    let stoppedEarly = false;
    let best: { state: StepState; err: number } | null = null;
    /** Q storage that no live state holds (at most three are ever allocated). */
    const spare: DeviceQuantized[] = [];
    const retire = (s: StepState) => {
      spare.push(s.q);
      for (const t of [s.bt, s.at, s.svd?.U, s.svd?.V, s.projection?.q, s.projection?.bt, s.source?.bt, s.source?.at]) scope.release(t);
    };
    /** The previous step's factors, copied (small: r·(m + n)), for rebuilding this step's Q at the end. */
    const sourceOf = async (prev: StepState | null): Promise<StepState['source']> =>
      prev ? { bt: scope.track(await device.scaleColumns(prev.bt, new Float64Array(prev.bt.cols).fill(1))), at: scope.track(await device.scaleColumns(prev.at, new Float64Array(prev.at.cols).fill(1))) } : null;
    /**
     * Records a state's measured error and keeps the best state. Returns the state to retire
     * (the loser, or null) and whether the error improved enough to go on.
     */
    const consider = (state: StepState, errSq: number): { loser: StepState | null; improves: boolean } => {
      const err = Math.sqrt(errSq) / norm;
      stepErrors.push(err);
      ctx.onStep?.(state.step, err);
      const improves = !best || err < best.err * (1 - EARLY_STOP_REL);
      if (!best || err < best.err) {
        const loser = best?.state ?? null;
        best = { state, err };
        return { loser, improves };
      }
      return { loser: state, improves };
    };

    try {
      const diff = scope.track(await device.zeros(w.rows, w.cols));
      let current: StepState | null = null;
      const subspace = options.svd === 'randomized' && (options.lowRankSteps ?? 'subspace') === 'subspace';
      for (let step = 1; step <= options.iters; step++) {
        if (ctx.signal?.aborted) throw new CancelledError();
        const prev: StepState | null = current;
        current = null;
        const x = prev ? scope.track(await device.lowRankResidual(w, prev.bt, prev.at)) : w;
        const source = await sourceOf(prev);
        const dest = spare.pop() ?? scope.track(await device.allocQuantized(n, codebook));
        const sums = await device.quantize(x, w, dest, codebook, { diff, previous: prev?.q });
        if (x !== w) scope.release(x);
        if (step === 1) errQ = Math.sqrt(sums.errSq) / norm;
        let loser: StepState | null = null;
        if (prev) {
          const verdict = consider(prev, sums.previousErrSq);
          loser = verdict.loser;
          if (!verdict.improves) {
            if (loser) retire(loser);
            spare.push(dest);
            scope.release(source?.bt);
            scope.release(source?.at);
            stoppedEarly = true;
            break;
          }
        }
        // The previous right subspace is the warm start, so a losing previous state is retired only now.
        if (subspace) {
          const first = prev ? null : scope.track(await device.randomNormal(w.cols, options.rank, options.seed + step));
          const z = prev ? (prev.projection ? prev.projection.bt : prev.svd!.V) : first!;
          const firstIters = options.iters === 1 ? SUBSPACE_SINGLE_STEP_POWER_ITERS : SUBSPACE_FIRST_POWER_ITERS;
          const iters = prev ? (options.powerIters?.warm ?? SUBSPACE_WARM_POWER_ITERS) : (options.powerIters?.first ?? firstIters);
          const projection = await subspaceStep(device, diff, z, iters, options);
          scope.release(first);
          scope.track(projection.q);
          scope.track(projection.bt);
          if (loser) retire(loser);
          const at = scope.track(await device.transpose(projection.bt));
          current = { step, q: dest, svd: null, projection, bt: projection.q, at, source };
        } else {
          const svd = await solve(device, diff, options, step, prev ? prev.svd : null);
          scope.track(svd.U);
          scope.track(svd.V);
          if (loser) retire(loser);
          const factors = await scaledFactors(device, svd, options.rank);
          current = { step, q: dest, svd, projection: null, bt: scope.track(factors.bt), at: scope.track(factors.at), source };
        }
      }
      if (current) {
        // The last step is measured directly: its residual and Q's error on it.
        const residual = scope.track(await device.lowRankResidual(w, current.bt, current.at));
        const errSq = await device.quantizationErrorSq(residual, current.q, codebook);
        scope.release(residual);
        const { loser } = consider(current, errSq);
        if (loser) retire(loser);
      }
      const chosen = best as { state: StepState; err: number } | null;
      if (!chosen) throw new Error('LoftQ needs at least one iteration');
      // The adapter stores B = U·√S/√s and A = √S·Vᵀ/√s of the chosen step's low-rank term.
      const svd = chosen.state.svd ?? (await svdOfProjection(device, chosen.state.projection!, options.rank));
      if (!chosen.state.svd) {
        scope.track(svd.U);
        scope.track(svd.V);
      }
      const factors = await scaledFactors(device, svd, options.rank, 1 / Math.sqrt(options.scaling));
      const tail = await leftOverSpectrum(device, w, chosen.state, diff, spare.pop() ?? scope.track(await device.allocQuantized(n, codebook)), codebook, options);
      return {
        quantized: scope.keep(chosen.state.q),
        loraB: factors.bt,
        loraA: factors.at,
        errQ,
        errInit: chosen.err,
        stepErrors,
        bestStep: chosen.state.step,
        stoppedEarly,
        errorRose: stepErrors.some((e, i) => i > 0 && e > stepErrors[i - 1]),
        residualSpectrum: [...Array.from(svd.spectrum).slice(0, options.rank), ...tail],
      };
    } finally {
      scope.dispose();
    }
  },
};
