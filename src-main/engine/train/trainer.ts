// What the training loop (train-loop.ts) drives: a Trainer — where the trainable parameters
// and AdamW's state live, and one optimizer step over them (optimizer-step.ts) — and, for a
// trainer in host memory, the GradientSource that gives each micro-batch's loss and gradients.
import type { AdamWState } from './adamw';
import type { ParamMap } from './adapter-params';

export interface GradientContext {
  /** The optimizer step (1-based) and the micro-batch within it (0-based). */
  step: number;
  micro: number;
  signal?: AbortSignal;
}

export interface GradientResult {
  /** Mean next-token cross-entropy (nats) over the batch's target tokens. */
  loss: number;
  /** d loss / d parameter for every parameter key (same sizes); the loop may modify them. */
  grads: Map<string, Float32Array>;
}

/** The gradient graphs, as the loop calls them. Must not modify `params`. */
export interface GradientSource {
  /** `batch`: rows of seqLen + 1 token ids (inputs = row[0..seqLen), targets = row[1..seqLen]). */
  compute(batch: Int32Array[], params: ReadonlyMap<string, Float32Array>, ctx: GradientContext): Promise<GradientResult>;
}

export interface OptimizerStepResult {
  /** Mean of the micro-batches' losses. */
  loss: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
  seconds: number;
}

/** What one optimizer step needs besides the parameters. */
export interface StepInput {
  accum: number;
  /** Clip the global gradient norm to this (≤ 0 or ∞: no clipping). */
  maxGradNorm: number;
  /** The rows of micro-batch `micro` of the step (called in order, once each). */
  batch(micro: number): Int32Array[];
  lr: number;
  signal?: AbortSignal;
}

/**
 * Where the trainable parameters and their AdamW state live, and the optimizer step over
 * them. A failed or cancelled step leaves them as they were.
 */
export interface Trainer {
  /** The parameters (the layout's names, in its order) and AdamW state to start from; null: a fresh optimizer. */
  load(params: ParamMap, state: AdamWState | null): Promise<void>;
  step(step: number, input: StepInput): Promise<OptimizerStepResult>;
  /** The current parameters in host memory (not to be modified). */
  parameters(): Promise<ParamMap>;
  optimizerState(): Promise<AdamWState>;
}
