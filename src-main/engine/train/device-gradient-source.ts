// The training loop's GradientSource and held-out loss on a device with neural-network
// operations (the GPU): the run's Q stays packed on the device, the adapter's current
// factors are uploaded once per step (the optimizer changes them between steps), and a
// micro-batch's rows run together as one batch (batch × seqLen tokens) through
// DeviceModel.loraBackward, with every target weighted 1 / (the micro-batch's target count)
// so the gradient is the micro-batch mean's. Deterministic: no atomics in the kernels, and
// cuBLAS gives the same bits for the same shapes on the same GPU.
import { CancelledError, UserError } from '../errors';
import { adapterKey } from '../export/peft';
import { modulePath, type LinearModule } from '../io/targets';
import { DeviceModel } from '../model/device-model';
import type { WeightSet } from '../model/weights';
import type { NeuralOps } from '../tensor/nn';
import type { GradientContext, GradientResult, GradientSource } from './train-loop';

export class DeviceGradientSource implements GradientSource {
  private readonly model: DeviceModel;
  /** [layer][module] → the PEFT keys of A and B. */
  private readonly keys: Array<Array<{ module: LinearModule; a: string; b: string }>>;
  private placedStep: number | null = null;

  /** `weights`: Q with an adapter attached (weights.lora set). */
  constructor(weights: WeightSet, nn: NeuralOps, where: string) {
    if (!weights.lora || weights.lora.modules.length === 0) throw new UserError('the run has no LoRA adapter to train');
    const modules = weights.lora.modules;
    this.keys = weights.layers.map((_, l) => modules.map((m) => ({ module: m, a: adapterKey(modulePath(l, m), 'lora_A'), b: adapterKey(modulePath(l, m), 'lora_B') })));
    this.model = DeviceModel.load(weights, nn, where);
  }

  get where(): string {
    return this.model.where;
  }

  memoryUsage(): { inUse: number; peak: number } {
    return this.model.memoryUsage();
  }

  /** The parameter keys this source differentiates, in layer/module order. */
  paramKeys(): string[] {
    return this.keys.flatMap((layer) => layer.flatMap((k) => [k.a, k.b]));
  }

  private place(params: ReadonlyMap<string, Float32Array>): void {
    this.keys.forEach((layer, l) => {
      for (const k of layer) {
        const a = params.get(k.a);
        const b = params.get(k.b);
        if (!a || !b) throw new Error(`no parameter for ${!a ? k.a : k.b}`);
        this.model.setLora(l, k.module, a, b);
      }
    });
  }

  /** Rows of seqLen + 1 tokens as one batch: inputs, targets. */
  private stack(batch: Int32Array[]): { ids: Int32Array; targets: Int32Array; n: number } {
    const n = batch[0].length - 1;
    if (batch.some((row) => row.length !== n + 1)) throw new Error('the rows of a micro-batch must have one length');
    const ids = new Int32Array(batch.length * n);
    const targets = new Int32Array(batch.length * n);
    batch.forEach((row, i) => {
      ids.set(row.subarray(0, n), i * n);
      targets.set(row.subarray(1), i * n);
    });
    return { ids, targets, n };
  }

  async compute(batch: Int32Array[], params: ReadonlyMap<string, Float32Array>, ctx: GradientContext): Promise<GradientResult> {
    if (batch.length === 0) throw new Error('empty micro-batch');
    if (ctx.signal?.aborted) throw new CancelledError();
    // The optimizer changes the parameters between steps, never within one.
    if (this.placedStep !== ctx.step) {
      this.place(params);
      this.placedStep = ctx.step;
    }
    const { ids, targets } = this.stack(batch);
    const c = new Float32Array(ids.length).fill(1 / ids.length);
    const grads = this.model.loraGradients();
    try {
      const r = await this.model.loraBackward(ids, targets, c, batch.length, grads, ctx.signal);
      const out = new Map<string, Float32Array>();
      for (let l = 0; l < this.keys.length; l++) {
        for (const k of this.keys[l]) {
          const g = grads[l][k.module]!;
          out.set(k.a, await this.model.download(g.dA));
          out.set(k.b, await this.model.download(g.dB));
        }
      }
      return { loss: r.loss, grads: out };
    } finally {
      for (const layer of grads) for (const g of Object.values(layer)) {
        g!.dA.dispose();
        g!.dB.dispose();
      }
    }
  }

  /** Mean next-token loss (nats per target) of rows of seqLen + 1 tokens, with Q + the given adapter. */
  async meanLoss(batch: Int32Array[], params: ReadonlyMap<string, Float32Array>, signal?: AbortSignal): Promise<number> {
    this.place(params);
    this.placedStep = null;
    const { ids, targets } = this.stack(batch);
    const nll = await this.model.nll(ids, targets, signal, batch.length);
    let sum = 0;
    for (const v of nll) sum += v;
    return sum / nll.length;
  }

  dispose(): Promise<void> {
    return this.model.dispose();
  }
}
