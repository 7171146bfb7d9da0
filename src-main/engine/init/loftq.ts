// LoftQ's alternating init (Li et al., 2023), with the LoRA scaling s honoured:
//   A = B = 0; repeat T times: Q ← q(W − s·B·A); U S Vᵀ ≈ W − Q (rank r);
//   B ← U·√S/√s, A ← √S·Vᵀ/√s,  so that Q + s·B·A ≈ W for any alpha.
// Each step is one ORT product (W − s·B·A), one fused JS pass (quantize and W − Q) and one
// low-rank solve, on float32 buffers reused across steps.
import { CancelledError } from '../errors';
import { exactSvd, randomizedSvd, type SvdResult } from '../lowrank';
import { BlockQuantizer, type Quantized } from '../quant/blockwise';
import type { LinalgBackend } from '../tensor/backend';
import { frobeniusNorm, matrix, transpose, type Matrix } from '../tensor/matrix';
import type { Initializer, InitContext, MatrixInitOptions, MatrixInitResult } from './types';

/** Power iterations of the randomized solver on the first step; later steps warm-start. */
const FIRST_STEP_POWER_ITERS = 2;
const WARM_POWER_ITERS = 1;

async function solve(backend: LinalgBackend, d: Matrix, options: MatrixInitOptions, step: number, prev: SvdResult | null): Promise<SvdResult> {
  if (options.svd === 'exact') return exactSvd(d, options.rank, backend);
  return randomizedSvd(backend, d, {
    rank: options.rank,
    seed: options.seed + step,
    powerIters: prev ? WARM_POWER_ITERS : FIRST_STEP_POWER_ITERS,
    // The residual changes little between steps: the last right subspace is a far better
    // start than a random one, so fewer power iterations reach the same accuracy.
    warmStart: prev ? prev.V : undefined,
  });
}

/** B̃ = U·√S (out×r) and Ã = √S·Vᵀ (r×in): s·B·A = B̃·Ã. */
function scaledFactors(svd: SvdResult, rank: number): { bt: Matrix; at: Matrix } {
  const { U, S, V } = svd;
  const m = U.rows;
  const n = V.rows;
  const root = Float64Array.from(S.subarray(0, rank), (v) => Math.sqrt(Math.max(v, 0)));
  const bt = matrix(m, rank);
  for (let i = 0; i < m; i++) for (let j = 0; j < rank; j++) bt.data[i * rank + j] = U.data[i * U.cols + j] * root[j];
  const vt = transpose(V.cols === rank ? V : sliceCols(V, rank));
  const at = matrix(rank, n, vt.data);
  for (let j = 0; j < rank; j++) {
    const row = at.data.subarray(j * n, (j + 1) * n);
    for (let i = 0; i < n; i++) row[i] *= root[j];
  }
  return { bt, at };
}

function sliceCols(m: Matrix, cols: number): Matrix {
  const out = matrix(m.rows, cols);
  for (let i = 0; i < m.rows; i++) out.data.set(m.data.subarray(i * m.cols, i * m.cols + cols), i * cols);
  return out;
}

function scaled(m: Matrix, factor: number): Matrix {
  return matrix(m.rows, m.cols, m.data.map((v) => v * factor));
}

export const loftqInit: Initializer = {
  method: 'loftq',
  async init(w: Matrix, options: MatrixInitOptions, ctx: InitContext): Promise<MatrixInitResult> {
    const { backend } = ctx;
    const quantizer = new BlockQuantizer(options.quant);
    const n = w.data.length;
    const norm = frobeniusNorm(w.data) || 1;
    const quantized: Quantized = { codes: new Uint8Array(n), absmax: new Float32Array(quantizer.blockCount(n)) };
    const diff = matrix(w.rows, w.cols);
    let residual: Float32Array = w.data;
    let svd: SvdResult | null = null;
    let factors: { bt: Matrix; at: Matrix } | null = null;
    let errQ = 0;
    const stepErrors: number[] = [];
    const parallel = ctx.parallel?.session(quantizer, w.data) ?? null;

    for (let step = 1; step <= options.iters; step++) {
      if (ctx.signal?.aborted) throw new CancelledError();
      if (factors) residual = (await backend.lowRankResidual(w, factors.bt, factors.at)).residual.data;
      const diffSq = parallel
        ? await parallel.quantizeInto(residual, quantized, diff.data)
        : quantizer.quantizeInto(residual, quantized, w.data, diff.data);
      if (step === 1) errQ = Math.sqrt(diffSq) / norm;
      svd = await solve(backend, diff, options, step, svd);
      factors = scaledFactors(svd, options.rank);
      if (step < options.iters) {
        // s·B·A = P·(W − Q) for an orthogonal projector P, so by Pythagoras
        // ‖W − Q − s·B·A‖² = ‖W − Q‖² − Σσᵢ²: the step's error without another pass.
        let captured = 0;
        for (let i = 0; i < options.rank && i < svd.S.length; i++) captured += svd.S[i] ** 2;
        stepErrors.push(Math.sqrt(Math.max(diffSq - captured, 0)) / norm);
        ctx.onStep?.(step, stepErrors[stepErrors.length - 1]);
      }
    }
    if (!factors || !svd) throw new Error('LoftQ needs at least one iteration');
    // The reported init error is measured directly on the final factors, not via the identity.
    const finalResidual = (await backend.lowRankResidual(w, factors.bt, factors.at)).residual.data;
    const errInit = Math.sqrt(quantizer.errorSq(finalResidual, quantized)) / norm;
    stepErrors.push(errInit);
    ctx.onStep?.(options.iters, errInit);

    const invRootS = 1 / Math.sqrt(options.scaling);
    return {
      quantized,
      loraB: scaled(factors.bt, invRootS),
      loraA: scaled(factors.at, invRootS),
      errQ,
      errInit,
      stepErrors,
      residualSpectrum: Array.from(svd.spectrum),
    };
  },
};
