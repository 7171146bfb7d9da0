// One optimizer step, the same wherever the parameters live: `accum` micro-batches, each one's
// loss and gradients summed into the parameter block → the global norm of the mean gradient →
// clipping → AdamW at the step's learning rate. A ParameterBlock is where the parameters,
// their gradient sums and AdamW's moments live: host memory (host-trainer.ts, float64 sums of
// a GradientSource's gradients) or a device (device-trainer.ts, the backward adding straight
// into one block on the GPU). BlockTrainer is that step as the loop's Trainer, for any block.
// A failed or cancelled step applies nothing: the update is the step's last act.
import { UserError } from '../errors';
import type { AdamWState } from './adamw';
import type { ParamMap } from './adapter-params';
import { clipScale } from './clip';
import type { GradientContext, OptimizerStepResult, StepInput, Trainer } from './trainer';

/** The trainable parameters, their gradient sums and AdamW state, wherever they live. */
export interface ParameterBlock {
  /** The parameters (by name, in order) and AdamW state to start from; null: fresh moments. */
  load(params: ParamMap, state: AdamWState | null): Promise<void>;
  /** Sets the gradient sums to zero: a step begins. */
  zeroGradients(): void;
  /** Adds one micro-batch's gradients into the sums; resolves with its loss. */
  accumulate(batch: Int32Array[], ctx: GradientContext): Promise<number>;
  /** The global L2 norm (float64) of the mean gradient: the sums divided by `count`. */
  meanGradientNorm(count: number): Promise<number>;
  /** One AdamW update at learning rate `lr` with the mean gradient (sums / count) times `clip`. */
  adamw(lr: number, count: number, clip: number): void;
  /** The current parameters in host memory (not to be modified). */
  parameters(): Promise<ParamMap>;
  optimizerState(): Promise<AdamWState>;
}

/** A micro-batch's loss, refused when it is not finite (nothing of the step is applied). */
export function checkLoss(loss: number, step: number): number {
  if (!Number.isFinite(loss)) throw new UserError(`loss became ${String(loss)} at step ${step}; try a lower --lr`);
  return loss;
}

/** The step's gradient norm, refused when it is not finite (nothing of the step is applied). */
export function checkGradNorm(norm: number, step: number): number {
  if (!Number.isFinite(norm)) throw new UserError(`the gradient norm became ${String(norm)} at step ${step}; try a lower --lr`);
  return norm;
}

export async function optimizerStep(block: ParameterBlock, step: number, input: StepInput): Promise<OptimizerStepResult> {
  const t0 = performance.now();
  block.zeroGradients();
  let lossSum = 0;
  for (let micro = 0; micro < input.accum; micro++) {
    lossSum += checkLoss(await block.accumulate(input.batch(micro), { step, micro, signal: input.signal }), step);
  }
  const norm = checkGradNorm(await block.meanGradientNorm(input.accum), step);
  block.adamw(input.lr, input.accum, clipScale(norm, input.maxGradNorm));
  return { loss: lossSum / input.accum, gradNorm: norm, seconds: (performance.now() - t0) / 1000 };
}

/** The optimizer step over a parameter block, as the training loop's Trainer. */
export class BlockTrainer<B extends ParameterBlock = ParameterBlock> implements Trainer {
  private loaded = false;

  constructor(protected readonly block: B) {}

  async load(params: ParamMap, state: AdamWState | null): Promise<void> {
    await this.block.load(params, state);
    this.loaded = true;
  }

  async step(step: number, input: StepInput): Promise<OptimizerStepResult> {
    if (!this.loaded) throw new Error(`${this.constructor.name}: step() before load()`);
    return optimizerStep(this.block, step, input);
  }

  parameters(): Promise<ParamMap> {
    return this.block.parameters();
  }

  optimizerState(): Promise<AdamWState> {
    return this.block.optimizerState();
  }
}
