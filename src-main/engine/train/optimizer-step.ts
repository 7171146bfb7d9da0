// One optimizer step, the same for fine-tuning (train-loop.ts) and the demo model's
// pretraining (pretrain.ts): `accum` micro-batches → losses and gradients from a
// GradientSource (summed in float64, then averaged) → global-norm clipping → AdamW at the
// step's learning rate. Cancel is honoured between micro-batches (through the source).
// HostTrainer is that step as a Trainer (train-loop.ts), the parameters in host memory; a
// device keeps them on the GPU instead (device-trainer.ts) with the same checks and clipping.
import { UserError } from '../errors';
import { AdamW, type AdamWOptions, type AdamWState } from './adamw';
import type { ParamMap } from './adapter-params';
import { clipGradNorm } from './clip';
import type { GradientSource, OptimizerStepResult, StepInput, Trainer } from './trainer';

export interface OptimizerStepOptions extends StepInput {
  /** Updated in place. */
  params: Map<string, Float32Array>;
  optimizer: AdamW;
  gradients: GradientSource;
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

/** Float64 accumulators and the float32 mean, per parameter, kept between steps. */
export class GradientBuffers {
  readonly acc: Map<string, Float64Array>;
  readonly mean: Map<string, Float32Array>;
  constructor(params: ReadonlyMap<string, Float32Array>) {
    this.acc = new Map([...params].map(([n, p]) => [n, new Float64Array(p.length)]));
    this.mean = new Map([...params].map(([n, p]) => [n, new Float32Array(p.length)]));
  }
}

export async function optimizerStep(step: number, o: OptimizerStepOptions, buffers: GradientBuffers): Promise<OptimizerStepResult> {
  const t0 = performance.now();
  for (const a of buffers.acc.values()) a.fill(0);
  let lossSum = 0;
  for (let micro = 0; micro < o.accum; micro++) {
    const r = await o.gradients.compute(o.batch(micro), o.params, { step, micro, signal: o.signal });
    lossSum += checkLoss(r.loss, step);
    for (const [n, a] of buffers.acc) {
      const g = r.grads.get(n);
      if (!g || g.length !== a.length) throw new Error(`the gradient source returned ${g ? g.length + ' elements' : 'nothing'} for ${n}, expected ${a.length}`);
      for (let i = 0; i < a.length; i++) a[i] += g[i];
    }
  }
  for (const [n, a] of buffers.acc) {
    const g = buffers.mean.get(n)!;
    for (let i = 0; i < a.length; i++) g[i] = a[i] / o.accum;
  }
  const { norm } = clipGradNorm(buffers.mean.values(), o.maxGradNorm);
  checkGradNorm(norm, step);
  o.optimizer.step(o.params, buffers.mean, o.lr);
  return { loss: lossSum / o.accum, gradNorm: norm, seconds: (performance.now() - t0) / 1000 };
}

/** The parameters, AdamW and the gradient buffers in host memory, gradients from a GradientSource. */
export class HostTrainer implements Trainer {
  private params: ParamMap = new Map();
  private optimizer: AdamW | null = null;
  private buffers: GradientBuffers | null = null;

  constructor(
    private readonly gradients: GradientSource,
    private readonly options: AdamWOptions,
  ) {}

  async load(params: ParamMap, state: AdamWState | null): Promise<void> {
    this.params = params;
    this.optimizer = new AdamW(params, this.options);
    if (state) this.optimizer.restore(state);
    this.buffers = new GradientBuffers(params);
  }

  async step(step: number, input: StepInput): Promise<OptimizerStepResult> {
    if (!this.optimizer || !this.buffers) throw new Error('HostTrainer: step() before load()');
    return optimizerStep(step, { ...input, params: this.params, optimizer: this.optimizer, gradients: this.gradients }, this.buffers);
  }

  async parameters(): Promise<ParamMap> {
    return this.params;
  }

  async optimizerState(): Promise<AdamWState> {
    if (!this.optimizer) throw new Error('HostTrainer: optimizerState() before load()');
    return this.optimizer.state();
  }
}
