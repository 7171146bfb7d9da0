// A model resident on a device with neural-network kernels (tensor/nn.ts): the definitions of
// layer.ts and head.ts run eagerly (forward and backward halves over the device's operations),
// the forward loop of forward.ts and the reverse walk of backward.ts, the head in blocks of
// rows. A quantized backbone is uploaded as packed codes + absmax and each product
// dequantizes its weight just in time, so the device never holds a float copy of the layers.
import { CancelledError, UserError } from '../errors';
import type { ModelConfig } from '../io/hf-config';
import { LLAMA_MODULES, type LinearModule } from '../io/targets';
import { TensorScope } from '../tensor/device';
import type { AttentionShape, LinearWeights, LoraGradients, NeuralOps, NnTensor, NnVector, NnWeight } from '../tensor/nn';
import { backpropagate } from './backward';
import { forwardLayers } from './forward';
import { headBackward, type HeadOps } from './head';
import { checkSequences, type LanguageModel } from './language-model';
import { decoderLayer, decoderLayerBackward, type LayerBackwardOps, type LayerNormName, type LayerOps, type LayerValues } from './layer';
import { ropeTables, slidingWindowOf } from './rope';
import type { WeightSet } from './weights';

/** o_proj and down_proj feed the float32 residual stream; the others feed rotary heads and SwiGLU. */
function productOutput(m: LinearModule): 'f32' | 'compute' {
  return m === 'o_proj' || m === 'down_proj' ? 'f32' : 'compute';
}

/** Per layer, the LoRA factor gradients of its adapted modules (device tensors the caller owns). */
export type LoraGradientSet = Array<Partial<Record<LinearModule, LoraGradients>>>;

interface DeviceLayer {
  norms: Record<LayerNormName, NnVector>;
  linears: Record<LinearModule, LinearWeights>;
}

/** The norms' backward, shared by a layer's operations and the head's: ∂L/∂x added to what goes around the norm. */
function normBackward(nn: NeuralOps, scope: TensorScope, dOut: NnTensor, x: NnTensor, w: NnVector, eps: number, around: NnTensor | null): NnTensor {
  const dx = scope.track(around ? nn.copy(around) : nn.zeros(x.rows, x.cols));
  nn.rmsNormBackward(dOut, x, w, eps, dx);
  return dx;
}

/**
 * One layer's operations for one pass. What it makes is freed when the layer is done. A
 * forward pass frees sooner where decoderLayer uses a value once: q, k, v after attention,
 * gate and up after SwiGLU, the residual h once the next sum has taken it (the MLP's
 * 2 × rows × intermediate floats are the largest activations of a layer); a recording pass
 * (the backward's recomputation) keeps every value, and the backward halves add the LoRA
 * factors' gradients into `grads`.
 */
class DeviceLayerOps implements LayerOps<NnTensor>, LayerBackwardOps<NnTensor> {
  readonly scope = new TensorScope();
  constructor(
    private readonly nn: NeuralOps,
    private readonly layer: DeviceLayer,
    private readonly shape: AttentionShape,
    private readonly eps: number,
    private readonly recording = false,
    private readonly grads: Partial<Record<LinearModule, LoraGradients>> = {},
  ) {}
  private release(...ts: NnTensor[]): void {
    if (!this.recording) for (const t of ts) this.scope.release(t);
  }
  rmsNorm(x: NnTensor, w: LayerNormName): NnTensor {
    return this.scope.track(this.nn.rmsNorm(x, this.layer.norms[w], this.eps));
  }
  linear(x: NnTensor, m: LinearModule): NnTensor {
    return this.scope.track(this.nn.linear(x, this.layer.linears[m], productOutput(m)));
  }
  attention(q: NnTensor, k: NnTensor, v: NnTensor): NnTensor {
    const out = this.scope.track(this.nn.attention(q, k, v, this.shape));
    this.release(q, k, v);
    return out;
  }
  swiglu(gate: NnTensor, up: NnTensor): NnTensor {
    const out = this.scope.track(this.nn.swiglu(gate, up));
    this.release(gate, up);
    return out;
  }
  residual(x: NnTensor, y: NnTensor): NnTensor {
    // y is a fresh product output: the sum goes into it. x is not used again; the layer's
    // own input is not this scope's to free (the forward loop frees it).
    this.nn.addInto(y, x);
    this.release(x);
    return y;
  }
  rmsNormBackward(dOut: NnTensor, x: NnTensor, w: LayerNormName, around: NnTensor | null): NnTensor {
    return normBackward(this.nn, this.scope, dOut, x, this.layer.norms[w], this.eps, around);
  }
  linearBackward(dOut: NnTensor, x: NnTensor, m: LinearModule, sum?: NnTensor): NnTensor {
    const dx = sum ?? this.scope.track(this.nn.zeros(x.rows, x.cols));
    this.nn.linearBackward(dOut, x, this.layer.linears[m], dx, this.grads[m]);
    return dx;
  }
  attentionBackward(dOut: NnTensor, q: NnTensor, k: NnTensor, v: NnTensor): { dq: NnTensor; dk: NnTensor; dv: NnTensor } {
    const d = this.nn.attentionBackward(q, k, v, dOut, this.shape);
    for (const t of [d.dq, d.dk, d.dv]) this.scope.track(t);
    return d;
  }
  swigluBackward(dOut: NnTensor, gate: NnTensor, up: NnTensor): { dgate: NnTensor; dup: NnTensor } {
    const d = this.nn.swigluBackward(dOut, gate, up);
    this.scope.track(d.dgate);
    this.scope.track(d.dup);
    return d;
  }
}

/** The head's operations: its loss stays on the device, one weighted NLL per row (the caller frees it). */
class DeviceHeadOps implements HeadOps<NnTensor, NnTensor> {
  readonly scope = new TensorScope();
  constructor(
    private readonly nn: NeuralOps,
    private readonly norm: NnVector,
    private readonly eps: number,
    private readonly head: NnWeight,
    private readonly targets: Int32Array,
    private readonly weights: Float32Array,
  ) {}
  rmsNorm(x: NnTensor): NnTensor {
    return this.scope.track(this.nn.rmsNorm(x, this.norm, this.eps));
  }
  /** The loss made, for the caller to free if the head fails after it. */
  rowLoss: NnTensor | null = null;
  crossEntropyBackward(normed: NnTensor): { loss: NnTensor; dNormed: NnTensor } {
    const { dNormed, rowLoss } = this.nn.crossEntropyBackward(normed, this.head, this.targets, this.weights);
    this.rowLoss = rowLoss;
    return { loss: rowLoss, dNormed: this.scope.track(dNormed) };
  }
  rmsNormBackward(dOut: NnTensor, x: NnTensor): NnTensor {
    return normBackward(this.nn, this.scope, dOut, x, this.norm, this.eps, null);
  }
}

export class DeviceModel implements LanguageModel {
  private readonly rope = new Map<number, { cos: NnVector; sin: NnVector }>();
  private disposed = false;

  private constructor(
    readonly config: ModelConfig,
    private readonly nn: NeuralOps,
    private readonly layers: DeviceLayer[],
    private readonly embedTable: NnWeight,
    private readonly norm: NnVector,
    private readonly head: NnWeight,
    private readonly owned: Array<{ dispose(): void }>,
    readonly where: string,
    /** Device bytes the weights hold (packed matrices at their packed size). */
    readonly weightBytes: number,
  ) {}

  /** Uploads a weight set (packed matrices stay packed); `where` names the device for reports. */
  static load(weights: WeightSet, nn: NeuralOps, where: string): DeviceModel {
    const config = weights.config;
    const act = config.raw.hidden_act ?? 'silu';
    if (act !== 'silu') throw new UserError(`hidden_act '${String(act)}' is not supported (only silu)`);
    const owned: Array<{ dispose(): void }> = [];
    let bytes = 0;
    const keep = <T extends NnWeight | NnVector>(t: T): T => {
      owned.push(t);
      bytes += 'bytes' in t ? t.bytes : 4 * t.length;
      return t;
    };
    try {
      const layers = weights.layers.map((layer): DeviceLayer => {
        const vec = (name: string) => keep(nn.vector(layer.tensors.get(name)!));
        const matrix = (name: string) => {
          const [rows, cols] = layer.shapes.get(name)!;
          const packed = layer.packed?.get(name);
          return keep(packed ? nn.packedWeight(packed, rows, cols) : nn.denseWeight(layer.tensors.get(name)!, rows, cols));
        };
        const linears = {} as Record<LinearModule, LinearWeights>;
        for (const m of LLAMA_MODULES) {
          const w: LinearWeights = { weight: matrix(m) };
          if (layer.tensors.has(`${m}.bias`)) w.bias = vec(`${m}.bias`);
          if (weights.lora?.modules.includes(m)) w.lora = { a: matrix(`${m}.lora_A`), b: matrix(`${m}.lora_B`), scaling: weights.lora.scaling };
          linears[m] = w;
        }
        return { norms: { input_layernorm: vec('input_layernorm'), post_attention_layernorm: vec('post_attention_layernorm') }, linears };
      });
      const { vocabSize: V, hiddenSize: H } = config;
      const embedTable = keep(nn.denseWeight(weights.embed, V, H));
      const head = weights.lmHead === weights.embed ? embedTable : keep(nn.denseWeight(weights.lmHead, V, H));
      const norm = keep(nn.vector(weights.norm));
      return new DeviceModel(config, nn, layers, embedTable, norm, head, owned, where, bytes);
    } catch (e) {
      for (const t of owned) t.dispose();
      throw e;
    }
  }

  private ropeFor(seq: number): { cos: NnVector; sin: NnVector } {
    let t = this.rope.get(seq);
    if (!t) {
      const { cos, sin } = ropeTables(this.config, seq);
      t = { cos: this.nn.vector(cos), sin: this.nn.vector(sin) };
      this.rope.set(seq, t);
    }
    return t;
  }

  private attentionShape(ids: Int32Array, batch: number): AttentionShape {
    const seq = checkSequences(this.config, ids, batch);
    const c = this.config;
    return { batch, seq, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, ...this.ropeFor(seq), window: slidingWindowOf(c) ?? 0 };
  }

  /** The normed final hidden states of `batch` stacked sequences (the caller frees them). */
  private async normedHidden(ids: Int32Array, batch: number, signal?: AbortSignal): Promise<NnTensor> {
    if (this.disposed) throw new Error('the model was used after dispose()');
    const c = this.config;
    const shape = this.attentionShape(ids, batch);
    const x0 = this.nn.embed(this.embedTable, ids);
    let last: NnTensor = x0;
    try {
      last = await forwardLayers(
        this.layers.length,
        x0,
        (l, x) => this.layerForward(l, x, shape),
        {
          signal,
          onInput: (_, x) => {
            last = x;
          },
          onDone: (_, x) => x.dispose(),
        },
      );
      return this.nn.rmsNorm(last, this.norm, c.rmsNormEps);
    } finally {
      last.dispose();
    }
  }

  async nll(ids: Int32Array, targets: Int32Array, signal?: AbortSignal, batch = 1): Promise<Float32Array> {
    if (targets.length !== ids.length) throw new UserError(`ids and targets must have the same length (${ids.length}, ${targets.length})`);
    for (const t of targets) if (t < 0 || t >= this.config.vocabSize) throw new UserError(`target id ${t} is outside the vocabulary (size ${this.config.vocabSize})`);
    const x = await this.normedHidden(ids, batch, signal);
    try {
      if (signal?.aborted) throw new CancelledError();
      return await this.nn.rowNll(x, this.head, targets);
    } finally {
      x.dispose();
    }
  }

  async logits(ids: Int32Array): Promise<Float32Array> {
    const x = await this.normedHidden(ids, 1);
    try {
      return await this.nn.logits(x, this.head);
    } finally {
      x.dispose();
    }
  }

  /** Zeroed gradient tensors for every LoRA factor of the model (the caller disposes them). */
  loraGradients(): LoraGradientSet {
    return this.layers.map((layer) => {
      const out: Partial<Record<LinearModule, LoraGradients>> = {};
      for (const m of LLAMA_MODULES) {
        const lora = layer.linears[m].lora;
        if (lora) out[m] = { dA: this.nn.zeros(lora.a.rows, lora.a.cols), dB: this.nn.zeros(lora.b.rows, lora.b.cols) };
      }
      return out;
    });
  }

  /**
   * Makes layer l's module m read its LoRA factors from weights the caller owns (a training
   * parameter block's views: the products then see each update without a copy); the uploaded
   * factors they replace are freed.
   */
  bindLora(l: number, m: LinearModule, a: NnWeight, b: NnWeight): void {
    const lora = this.layers[l]?.linears[m].lora;
    if (!lora) throw new Error(`layer ${l} has no LoRA branch on ${m}`);
    if (a.rows !== lora.a.rows || a.cols !== lora.a.cols || b.rows !== lora.b.rows || b.cols !== lora.b.cols) throw new Error(`the LoRA factors of layer ${l} ${m} do not have the adapter's shape`);
    for (const old of [lora.a, lora.b]) {
      const i = this.owned.indexOf(old);
      if (i >= 0) {
        old.dispose();
        this.owned.splice(i, 1);
      }
    }
    lora.a = a;
    lora.b = b;
  }

  /**
   * L = Σ_t c_t·nll_t over `batch` stacked sequences, and ∂L/∂(every LoRA factor) added into
   * `grads`: the reverse walk of backward.ts — the forward keeps each layer's input, the head's
   * backward gives ∂L/∂x, and each layer's backward, in reverse, recomputes that layer's
   * forward from its input.
   */
  async loraBackward(ids: Int32Array, targets: Int32Array, c: Float32Array, batch: number, grads: LoraGradientSet, signal?: AbortSignal): Promise<{ loss: number; nll: Float32Array }> {
    if (this.disposed) throw new Error('the model was used after dispose()');
    if (targets.length !== ids.length || c.length !== ids.length) throw new UserError(`ids, targets and loss weights must have the same length (${ids.length}, ${targets.length}, ${c.length})`);
    for (const t of targets) if (t < 0 || t >= this.config.vocabSize) throw new UserError(`target id ${t} is outside the vocabulary (size ${this.config.vocabSize})`);
    const shape = this.attentionShape(ids, batch);
    const held: { rowLoss?: NnTensor } = {};
    try {
      const { dx, head } = await backpropagate(
        this.layers.length,
        this.nn.embed(this.embedTable, ids),
        {
          forward: (l, x) => this.layerForward(l, x, shape),
          backward: (l, x, dy) => this.layerBackward(l, x, dy, shape, grads[l]),
          release: (x) => x.dispose(),
        },
        (x) => {
          const head = this.headBackward(x, targets, c);
          held.rowLoss = head.loss;
          return head;
        },
        signal,
      );
      dx.dispose();
      // Read only now, so that the backward was enqueued without waiting for the head.
      const weighted = await this.nn.download(head.loss);
      let loss = 0;
      const nll = new Float32Array(weighted.length);
      for (let i = 0; i < weighted.length; i++) {
        loss += weighted[i];
        nll[i] = c[i] > 0 ? weighted[i] / c[i] : 0;
      }
      return { loss, nll };
    } finally {
      held.rowLoss?.dispose();
    }
  }

  private layerForward(l: number, x: NnTensor, shape: AttentionShape): NnTensor {
    const ops = new DeviceLayerOps(this.nn, this.layers[l], shape, this.config.rmsNormEps);
    try {
      return ops.scope.keep(decoderLayer(ops, x));
    } finally {
      ops.scope.dispose();
    }
  }

  /** ∂L/∂x of layer l given ∂L/∂y, its forward recomputed from x (layer.ts); LoRA gradients added into `grads`. */
  private layerBackward(l: number, x: NnTensor, dy: NnTensor, shape: AttentionShape, grads: Partial<Record<LinearModule, LoraGradients>>): NnTensor {
    const ops = new DeviceLayerOps(this.nn, this.layers[l], shape, this.config.rmsNormEps, true, grads);
    try {
      const values: Partial<LayerValues<NnTensor>> = {};
      decoderLayer(ops, x, values);
      return ops.scope.keep(decoderLayerBackward(ops, values as LayerValues<NnTensor>, dy));
    } finally {
      ops.scope.dispose();
    }
  }

  /** The head's per-row weighted loss (on the device) and ∂L/∂x (head.ts). */
  private headBackward(x: NnTensor, targets: Int32Array, c: Float32Array): { loss: NnTensor; dx: NnTensor } {
    const ops = new DeviceHeadOps(this.nn, this.norm, this.config.rmsNormEps, this.head, targets, c);
    try {
      const r = headBackward(ops, x);
      ops.scope.keep(r.dx);
      return r;
    } catch (e) {
      ops.rowLoss?.dispose();
      throw e;
    } finally {
      ops.scope.dispose();
    }
  }

  /** A float32 device tensor (a gradient) to the host. */
  download(t: NnTensor): Promise<Float32Array> {
    return this.nn.download(t);
  }

  memoryUsage(): { inUse: number; peak: number } {
    return this.nn.memoryUsage();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.owned) t.dispose();
    for (const t of this.rope.values()) {
      t.cos.dispose();
      t.sin.dispose();
    }
  }
}
