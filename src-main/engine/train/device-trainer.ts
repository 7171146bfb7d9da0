// Fine-tuning with everything that changes on the device (the GPU): the run's Q stays packed
// there (model/device-model.ts), and the adapter's float32 master weights, gradients and
// AdamW moments live in one parameter block (tensor/nn.ts) whose views the model's LoRA
// products read and its backward adds into. The step is optimizer-step.ts's, as on the host;
// here its parts are: the micro-batches' gradients accumulate in the block (each micro-batch's
// rows run as one batch, every target weighted 1 / the micro-batch's target count, so the sum
// over micro-batches / accum is the mean gradient), the global norm comes back to the host (the
// clipping decision), one AdamW launch per run of decay flags updates the parameters (adamw.ts's
// arithmetic, the division by accum and the clipping inside it), and the compute-precision
// copies are refreshed.
// Only the loss and the norm cross to the host per step; the parameters and moments do at
// checkpoints. Deterministic: no atomics in the kernels, and cuBLAS gives the same bits for
// the same shapes on the same GPU, so a resumed run ends where an uninterrupted one does.
import { CancelledError, UserError } from '../errors';
import { adapterKey } from '../adapter/peft';
import { modulePath, type LinearModule } from '../io/targets';
import { DeviceModel, type LoraGradientSet } from '../model/device-model';
import type { WeightSet } from '../model/weights';
import type { NeuralOps, NnParameterBlock, ParameterPart } from '../tensor/nn';
import { adamwStepConstants, checkAdamWOptions, decayFlags, type AdamWOptions, type AdamWState } from './adamw';
import type { ParamMap } from './adapter-params';
import { BlockTrainer, type ParameterBlock } from './optimizer-step';
import type { GradientContext } from './trainer';

interface BlockEntry {
  name: string;
  layer: number;
  module: LinearModule;
  factor: 'a' | 'b';
}

/** The adapter's parameter block on the device, with the model whose backward adds into it. */
export class DeviceParameters implements ParameterBlock {
  private readonly model: DeviceModel;
  private readonly block: NnParameterBlock;
  /** The block's tensors in order: each LoRA factor of each layer's adapted modules. */
  private readonly entries: BlockEntry[];
  private readonly index: Map<string, number>;
  private readonly grads: LoraGradientSet;
  /** Runs of consecutive tensors with one weight-decay flag: [from, to, decays]. */
  private readonly decayRuns: Array<[number, number, boolean]>;
  /** AdamW's step count. */
  private t = 0;

  /** `weights`: Q with an adapter attached (weights.lora set); its factors are replaced by load(). */
  constructor(
    weights: WeightSet,
    nn: NeuralOps,
    where: string,
    private readonly options: AdamWOptions,
  ) {
    if (!weights.lora || weights.lora.modules.length === 0) throw new UserError('the run has no LoRA adapter to train');
    checkAdamWOptions(options);
    const modules = weights.lora.modules;
    this.entries = weights.layers.flatMap((_, l) =>
      modules.flatMap((m) => (['a', 'b'] as const).map((f) => ({ name: adapterKey(modulePath(l, m), f === 'a' ? 'lora_A' : 'lora_B'), layer: l, module: m, factor: f }))),
    );
    this.index = new Map(this.entries.map((e, i) => [e.name, i]));
    const shapes = this.entries.map((e) => {
      const s = weights.layers[e.layer].shapes.get(`${e.module}.lora_${e.factor === 'a' ? 'A' : 'B'}`);
      if (!s || s.length !== 2) throw new Error(`no LoRA factor ${e.name} in the weights`);
      return [s[0], s[1]] as const;
    });
    const decays = decayFlags(this.entries.map((e) => e.name), options.noDecay);
    this.decayRuns = [];
    this.entries.forEach((e, i) => {
      const d = decays.get(e.name)!;
      const last = this.decayRuns[this.decayRuns.length - 1];
      if (last && last[2] === d) last[1] = i + 1;
      else this.decayRuns.push([i, i + 1, d]);
    });
    this.model = DeviceModel.load(weights, nn, where);
    try {
      this.block = nn.parameterBlock(shapes);
    } catch (e) {
      void this.model.dispose();
      throw e;
    }
    const pair = new Map<string, { a?: number; b?: number }>();
    this.entries.forEach((e, i) => {
      const key = `${e.layer}/${e.module}`;
      pair.set(key, { ...pair.get(key), [e.factor]: i });
    });
    this.grads = weights.layers.map(() => ({}));
    for (const [key, { a, b }] of pair) {
      const [l, m] = key.split('/') as [string, LinearModule];
      this.model.bindLora(Number(l), m, this.block.weight(a!), this.block.weight(b!));
      this.grads[Number(l)][m] = { dA: this.block.gradient(a!), dB: this.block.gradient(b!) };
    }
  }

  memoryUsage(): { inUse: number; peak: number } {
    return this.model.memoryUsage();
  }

  async load(params: ParamMap, state: AdamWState | null): Promise<void> {
    if (params.size !== this.entries.length) throw new Error(`the trainer has ${this.entries.length} parameters, ${params.size} were given`);
    const write = (part: ParameterPart, values: ReadonlyMap<string, Float32Array>) => {
      for (const [name, data] of values) {
        const i = this.index.get(name);
        if (i === undefined) throw new Error(`no LoRA factor ${name} on the device`);
        this.block.write(part, i, data);
      }
    };
    write('value', params);
    if (state) {
      if (state.expAvg.size !== params.size || state.expAvgSq.size !== params.size) throw new Error('the optimizer state does not cover the parameters');
      write('expAvg', state.expAvg);
      write('expAvgSq', state.expAvgSq);
      this.t = state.step;
    } else {
      const zeros = new Map([...params].map(([n, p]) => [n, new Float32Array(p.length)]));
      write('expAvg', zeros);
      write('expAvgSq', zeros);
      this.t = 0;
    }
    this.block.refreshWeights();
  }

  /** Rows of seqLen + 1 tokens as one batch: inputs, targets. */
  private stack(batch: Int32Array[]): { ids: Int32Array; targets: Int32Array } {
    if (batch.length === 0) throw new Error('empty micro-batch');
    const n = batch[0].length - 1;
    if (batch.some((row) => row.length !== n + 1)) throw new Error('the rows of a micro-batch must have one length');
    const ids = new Int32Array(batch.length * n);
    const targets = new Int32Array(batch.length * n);
    batch.forEach((row, i) => {
      ids.set(row.subarray(0, n), i * n);
      targets.set(row.subarray(1), i * n);
    });
    return { ids, targets };
  }

  zeroGradients(): void {
    this.block.zeroGradients();
  }

  async accumulate(batch: Int32Array[], ctx: GradientContext): Promise<number> {
    if (ctx.signal?.aborted) throw new CancelledError();
    const { ids, targets } = this.stack(batch);
    // Every target weighs 1 / the micro-batch's target count: the sum over micro-batches / accum is the mean gradient.
    const c = new Float32Array(ids.length).fill(1 / ids.length);
    return (await this.model.loraBackward(ids, targets, c, batch.length, this.grads, ctx.signal)).loss;
  }

  async meanGradientNorm(count: number): Promise<number> {
    // The block holds the sum over micro-batches; the mean's norm is the sum's / count.
    return Math.sqrt(await this.block.gradientSumSquares()) / count;
  }

  adamw(lr: number, count: number, clip: number): void {
    const constants = adamwStepConstants(this.options, this.t + 1, lr);
    for (const [from, to, decays] of this.decayRuns) this.block.adamw(from, to, constants, decays, count, clip);
    this.t++;
    this.block.refreshWeights();
  }

  private async named(part: ParameterPart): Promise<ParamMap> {
    const values = await this.block.read(part);
    return new Map(this.entries.map((e, i) => [e.name, values[i]]));
  }

  parameters(): Promise<ParamMap> {
    return this.named('value');
  }

  /** The last step's gradients: the sum over its micro-batches of each one's mean-loss gradient (before clipping). */
  gradients(): Promise<ParamMap> {
    return this.named('gradient');
  }

  async optimizerState(): Promise<AdamWState> {
    return { step: this.t, expAvg: await this.named('expAvg'), expAvgSq: await this.named('expAvgSq') };
  }

  /** Mean next-token loss (nats per target) of rows of seqLen + 1 tokens with Q + the trainer's current adapter. */
  async meanLoss(batch: Int32Array[], signal?: AbortSignal): Promise<number> {
    const { ids, targets } = this.stack(batch);
    const nll = await this.model.nll(ids, targets, signal, batch.length);
    let sum = 0;
    for (const v of nll) sum += v;
    return sum / nll.length;
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
    this.block.dispose();
  }
}

/** The optimizer step with the adapter, its gradients and AdamW's moments on the device. */
export class DeviceTrainer extends BlockTrainer<DeviceParameters> {
  /** `weights`: Q with an adapter attached (weights.lora set); its factors are replaced by load(). */
  constructor(weights: WeightSet, nn: NeuralOps, where: string, options: AdamWOptions) {
    super(new DeviceParameters(weights, nn, where, options));
  }

  memoryUsage(): { inUse: number; peak: number } {
    return this.block.memoryUsage();
  }

  /** The last step's gradients: the sum over its micro-batches of each one's mean-loss gradient (before clipping). */
  gradients(): Promise<ParamMap> {
    return this.block.gradients();
  }

  /** Mean next-token loss (nats per target) of rows of seqLen + 1 tokens with Q + the trainer's current adapter. */
  meanLoss(batch: Int32Array[], signal?: AbortSignal): Promise<number> {
    return this.block.meanLoss(batch, signal);
  }

  dispose(): Promise<void> {
    return this.block.dispose();
  }
}
