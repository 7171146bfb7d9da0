// Training with the parameters in host memory (the CPU, and the demo model's pretraining): a
// GradientSource gives each micro-batch's loss and float32 gradients, summed here in float64;
// the mean is rounded to float32 once, its global norm (float64, in parameter order) decides
// the clipping, and AdamW (adamw.ts) updates the caller's arrays in place.
import { AdamW, type AdamWOptions, type AdamWState } from './adamw';
import type { ParamMap } from './adapter-params';
import { globalNorm } from './clip';
import { BlockTrainer, type ParameterBlock } from './optimizer-step';
import type { GradientContext, GradientSource } from './trainer';

export class HostParameters implements ParameterBlock {
  private params: ParamMap = new Map();
  private optimizer: AdamW | null = null;
  /** Float64 gradient sums, and their float32 mean once a step's norm was asked for. */
  private sums = new Map<string, Float64Array>();
  private mean = new Map<string, Float32Array>();
  private meanOf: number | null = null;

  constructor(
    private readonly gradients: GradientSource,
    private readonly options: AdamWOptions,
  ) {}

  async load(params: ParamMap, state: AdamWState | null): Promise<void> {
    this.params = params;
    this.optimizer = new AdamW(params, this.options);
    if (state) this.optimizer.restore(state);
    this.sums = new Map([...params].map(([n, p]) => [n, new Float64Array(p.length)]));
    this.mean = new Map([...params].map(([n, p]) => [n, new Float32Array(p.length)]));
  }

  zeroGradients(): void {
    for (const a of this.sums.values()) a.fill(0);
    this.meanOf = null;
  }

  async accumulate(batch: Int32Array[], ctx: GradientContext): Promise<number> {
    const r = await this.gradients.compute(batch, this.params, ctx);
    for (const [n, a] of this.sums) {
      const g = r.grads.get(n);
      if (!g || g.length !== a.length) throw new Error(`the gradient source returned ${g ? g.length + ' elements' : 'nothing'} for ${n}, expected ${a.length}`);
      for (let i = 0; i < a.length; i++) a[i] += g[i];
    }
    this.meanOf = null;
    return r.loss;
  }

  private meanGradient(count: number): Map<string, Float32Array> {
    if (this.meanOf !== count) {
      for (const [n, a] of this.sums) {
        const g = this.mean.get(n)!;
        for (let i = 0; i < a.length; i++) g[i] = a[i] / count;
      }
      this.meanOf = count;
    }
    return this.mean;
  }

  async meanGradientNorm(count: number): Promise<number> {
    return globalNorm(this.meanGradient(count).values());
  }

  adamw(lr: number, count: number, clip: number): void {
    if (!this.optimizer) throw new Error('HostParameters: adamw() before load()');
    const mean = this.meanGradient(count);
    // As clip.ts's clipGradNorm scales: each float32 gradient times the factor, rounded on store.
    if (clip !== 1) for (const g of mean.values()) for (let i = 0; i < g.length; i++) g[i] *= clip;
    this.meanOf = null;
    this.optimizer.step(this.params, mean, lr);
  }

  async parameters(): Promise<ParamMap> {
    return this.params;
  }

  async optimizerState(): Promise<AdamWState> {
    if (!this.optimizer) throw new Error('HostTrainer: optimizerState() before load()');
    return this.optimizer.state();
  }
}

/** The parameters, AdamW and the gradient sums in host memory, gradients from a GradientSource. */
export class HostTrainer extends BlockTrainer<HostParameters> {
  constructor(gradients: GradientSource, options: AdamWOptions) {
    super(new HostParameters(gradients, options));
  }
}
