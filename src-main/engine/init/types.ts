// The adapter-initializer interface: every method (QLoRA, LoftQ, later calibrated ones)
// turns one weight matrix W into a quantized Q plus LoRA factors with Q + s·B·A ≈ W.
import type { QuantSpec } from '../quant/blockwise';
import type { ComputeDevice, DeviceMatrix, DeviceQuantized, Precision } from '../tensor/device';

export type InitMethod = 'qlora' | 'loftq';
export const INIT_METHODS: readonly InitMethod[] = ['qlora', 'loftq'];

export type SvdKind = 'randomized' | 'exact';

export interface MatrixInitOptions {
  quant: QuantSpec;
  rank: number;
  /** LoRA scaling s = alpha/r, or alpha/√r with rsLoRA. */
  scaling: number;
  /** LoftQ alternating steps T (at most: the loop stops early once the error stops falling). */
  iters: number;
  svd: SvdKind;
  seed: number;
  /** Precision of the randomized solver's sketch products (default tf32; see lowrank/randomized-svd). */
  sketchPrecision?: Precision;
  /** Power iterations of the randomized solver: on LoftQ's first step (cold start) and later ones (warm start). */
  powerIters?: { first: number; warm: number };
  /**
   * How LoftQ's randomized low-rank steps run: 'subspace' (default) is rank-r subspace
   * iteration (a Gaussian start on the first step, the previous right subspace after it) and
   * the projection onto it, with one small SVD for the returned step only; 'randomized' runs a
   * randomized SVD (oversampled, Rayleigh–Ritz) every step.
   */
  lowRankSteps?: 'subspace' | 'randomized';
}

/** The largest --iters accepted: with the early stop, more steps never change the result. */
export const MAX_ITERS = 100;

export interface InitContext {
  device: ComputeDevice;
  signal?: AbortSignal;
  /** Called after each alternating step is measured, with its relative init error. */
  onStep?: (step: number, relErr: number) => void;
}

/** One matrix's init. The device tensors are the caller's to read and dispose. */
export interface MatrixInitResult {
  quantized: DeviceQuantized;
  /** lora_A, r × in. */
  loraA: DeviceMatrix;
  /** lora_B, out × r. */
  loraB: DeviceMatrix;
  /** ‖W − q(W)‖_F / ‖W‖_F: QLoRA's init error. */
  errQ: number;
  /** ‖W − Q − s·B·A‖_F / ‖W‖_F of the returned step. */
  errInit: number;
  /** The measured error of every alternating step run (one entry for QLoRA). */
  stepErrors: number[];
  /** The step returned (1-based): the one with the lowest measured error. */
  bestStep: number;
  /** The loop ended before `iters` steps because the error stopped falling. */
  stoppedEarly: boolean;
  /** Some step's error was above the step before it. */
  errorRose: boolean;
  /**
   * Leading singular values of W − Q for the returned step: the first r are what the rank-r
   * term holds (LoftQ) or could hold (QLoRA, B = 0), the next (up to SPECTRUM_TAIL) what is left
   * in W − Q − s·B·A.
   */
  residualSpectrum: number[];
}

export interface Initializer {
  readonly method: InitMethod;
  /** w stays the caller's. */
  init(w: DeviceMatrix, options: MatrixInitOptions, ctx: InitContext): Promise<MatrixInitResult>;
}

export { loraScaling } from '../rules/lora-scaling';
