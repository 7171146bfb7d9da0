// The adapter-initializer interface: every method (QLoRA, LoftQ, later calibrated ones)
// turns one weight matrix W into a quantized Q plus LoRA factors with Q + s·B·A ≈ W.
import type { QuantSpec, Quantized } from '../quant/blockwise';
import type { ParallelQuantizer } from '../quant/parallel-quantizer';
import type { LinalgBackend } from '../tensor/backend';
import type { Matrix } from '../tensor/matrix';

export type InitMethod = 'qlora' | 'loftq';
export const INIT_METHODS: readonly InitMethod[] = ['qlora', 'loftq'];

export type SvdKind = 'randomized' | 'exact';

export interface MatrixInitOptions {
  quant: QuantSpec;
  rank: number;
  /** LoRA scaling s = alpha/r, or alpha/√r with rsLoRA. */
  scaling: number;
  /** LoftQ alternating steps T. */
  iters: number;
  svd: SvdKind;
  seed: number;
}

export interface InitContext {
  backend: LinalgBackend;
  /** Worker threads for the quantize passes; without it they run on the calling thread. */
  parallel?: ParallelQuantizer;
  signal?: AbortSignal;
  /** Called after each alternating step with the relative init error so far. */
  onStep?: (step: number, relErr: number) => void;
}

export interface MatrixInitResult {
  quantized: Quantized;
  /** lora_A, r × in. */
  loraA: Matrix;
  /** lora_B, out × r. */
  loraB: Matrix;
  /** ‖W − q(W)‖_F / ‖W‖_F: QLoRA's init error. */
  errQ: number;
  /** ‖W − Q − s·B·A‖_F / ‖W‖_F. */
  errInit: number;
  /** errInit after each alternating step (one entry for QLoRA). */
  stepErrors: number[];
  /** Top singular values of W − Q (the residual the adapter approximates). */
  residualSpectrum: number[];
}

export interface Initializer {
  readonly method: InitMethod;
  init(w: Matrix, options: MatrixInitOptions, ctx: InitContext): Promise<MatrixInitResult>;
}

export function loraScaling(alpha: number, rank: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}
