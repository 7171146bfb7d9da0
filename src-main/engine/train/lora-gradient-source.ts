// The training loop's GradientSource and evaluator for a real model: the run's exact Q
// (loaded once, never copied) with the current adapter parameters placed, by reference, into
// every layer's `${m}.lora_A` / `${m}.lora_B` slots before each computation. Gradients come
// from loraGradients (ONNX forward + backward, backbone frozen), one row at a time, summed
// over the micro-batch with the micro-batch's total target count as the denominator, so the
// sum is the gradient of the micro-batch's mean loss. One OrtRuntime serves every step (the
// graphs are compiled once). Rows are processed in order and summed in float64: the result
// depends only on the parameters and the batch (deterministic).
import { CancelledError, UserError } from '../errors';
import { adapterKey } from '../adapter/peft';
import { loraGradients } from '../grad/lora-gradients';
import { modulePath, type LinearModule } from '../io/targets';
import { Transformer } from '../model/transformer';
import type { WeightSet } from '../model/weights';
import { OrtRuntime } from '../tensor/ort-runtime';
import type { GradientContext, GradientResult, GradientSource } from './trainer';

export class LoraGradientSource implements GradientSource {
  readonly runtime: OrtRuntime;
  private readonly model: Transformer;
  /** [layer][module] → the PEFT keys of A and B. */
  private readonly keys: Array<Array<{ module: LinearModule; a: string; b: string }>>;

  /** `weights`: Q with an adapter attached (weights.lora set); its lora slots are overwritten per call. */
  constructor(
    readonly weights: WeightSet,
    runtime?: OrtRuntime,
  ) {
    if (!weights.lora || weights.lora.modules.length === 0) throw new UserError('the run has no LoRA adapter to train');
    this.runtime = runtime ?? new OrtRuntime({ provider: 'cpu', threads: 0 });
    this.model = new Transformer(weights, this.runtime);
    const modules = weights.lora.modules;
    this.keys = weights.layers.map((_, l) =>
      modules.map((m) => ({ module: m, a: adapterKey(modulePath(l, m), 'lora_A'), b: adapterKey(modulePath(l, m), 'lora_B') })),
    );
  }

  /** The parameter keys this source differentiates, in layer/module order. */
  paramKeys(): string[] {
    return this.keys.flatMap((layer) => layer.flatMap((k) => [k.a, k.b]));
  }

  /** Points the layers' LoRA slots at the parameter arrays (no copy). */
  private place(params: ReadonlyMap<string, Float32Array>): void {
    this.weights.layers.forEach((layer, l) => {
      for (const k of this.keys[l]) {
        const a = params.get(k.a);
        const b = params.get(k.b);
        if (!a || !b) throw new Error(`no parameter for ${!a ? k.a : k.b}`);
        if (a.length !== layer.tensors.get(`${k.module}.lora_A`)!.length || b.length !== layer.tensors.get(`${k.module}.lora_B`)!.length) {
          throw new Error(`parameter ${k.a} or ${k.b} does not have the adapter's shape`);
        }
        layer.tensors.set(`${k.module}.lora_A`, a);
        layer.tensors.set(`${k.module}.lora_B`, b);
      }
    });
  }

  async compute(batch: Int32Array[], params: ReadonlyMap<string, Float32Array>, ctx: GradientContext): Promise<GradientResult> {
    if (batch.length === 0) throw new Error('empty micro-batch');
    this.place(params);
    const denominator = batch.reduce((s, row) => s + row.length - 1, 0);
    const acc = new Map<string, Float64Array>();
    for (const key of this.paramKeys()) acc.set(key, new Float64Array(params.get(key)!.length));
    let loss = 0;
    for (const row of batch) {
      if (ctx.signal?.aborted) throw new CancelledError();
      const n = row.length - 1;
      const r = await loraGradients(this.weights, row.subarray(0, n), row.subarray(1), new Float32Array(n).fill(1), {
        runtime: this.runtime,
        denominator,
        signal: ctx.signal,
      });
      loss += r.loss;
      r.grads.forEach((layer, l) => {
        for (const k of this.keys[l]) {
          const g = layer.get(k.module)!;
          addInto(acc.get(k.a)!, g.dA);
          addInto(acc.get(k.b)!, g.dB);
        }
      });
    }
    const grads = new Map<string, Float32Array>();
    for (const [key, a] of acc) grads.set(key, Float32Array.from(a));
    return { loss, grads };
  }

  /** Mean next-token loss (nats per target) of rows of seqLen + 1 tokens, with Q + the given adapter. */
  async meanLoss(batch: Int32Array[], params: ReadonlyMap<string, Float32Array>, signal?: AbortSignal): Promise<number> {
    this.place(params);
    let sum = 0;
    let count = 0;
    for (const row of batch) {
      const n = row.length - 1;
      const nll = await this.model.nll(row.subarray(0, n), row.subarray(1), signal);
      for (let t = 0; t < n; t++) sum += nll[t];
      count += n;
    }
    return sum / count;
  }

  dispose(): Promise<void> {
    return this.runtime.dispose();
  }
}

function addInto(acc: Float64Array, g: Float32Array): void {
  if (g.length !== acc.length) throw new Error(`gradient of ${g.length} elements for a parameter of ${acc.length}`);
  for (let i = 0; i < acc.length; i++) acc[i] += g[i];
}
