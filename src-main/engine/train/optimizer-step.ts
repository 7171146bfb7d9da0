// One optimizer step, the same for fine-tuning (train-loop.ts) and the demo model's
// pretraining (pretrain.ts): `accum` micro-batches → losses and gradients from a
// GradientSource (summed in float64, then averaged) → global-norm clipping → AdamW at the
// step's learning rate. Cancel is honoured between micro-batches (through the source).
import { UserError } from '../errors';
import type { AdamW } from './adamw';
import { clipGradNorm } from './clip';
import type { GradientSource } from './train-loop';

export interface OptimizerStepOptions {
  /** Updated in place. */
  params: Map<string, Float32Array>;
  optimizer: AdamW;
  gradients: GradientSource;
  accum: number;
  /** Clip the global gradient norm to this (≤ 0 or ∞: no clipping). */
  maxGradNorm: number;
  /** The rows of micro-batch `micro` of the step (called in order, once each). */
  batch(micro: number): Int32Array[];
  lr: number;
  signal?: AbortSignal;
}

export interface OptimizerStepResult {
  /** Mean of the micro-batches' losses. */
  loss: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
  seconds: number;
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
    if (!Number.isFinite(r.loss)) throw new UserError(`loss became ${String(r.loss)} at step ${step}; try a lower --lr`);
    lossSum += r.loss;
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
  if (!Number.isFinite(norm)) throw new UserError(`the gradient norm became ${String(norm)} at step ${step}; try a lower --lr`);
  o.optimizer.step(o.params, buffers.mean, o.lr);
  return { loss: lossSum / o.accum, gradNorm: norm, seconds: (performance.now() - t0) / 1000 };
}
