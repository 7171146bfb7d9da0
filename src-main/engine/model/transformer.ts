// The forward pass of a Llama-family decoder on onnxruntime: embedding lookup in JS, one
// session run per decoder layer (the same compiled graph for all layers, weights fed as
// inputs), then the head. Sessions are compiled once per graph variant and reused.
import { CancelledError, UserError } from '../errors';
import { hostTensor, OrtRuntime, type HostTensor } from '../tensor/ort-runtime';
import { buildDecoderGraph, decoderGraphKey, decoderSpecOf, decoderWeightInputs } from './decoder-graph';
import { buildHeadGraph } from './head-graph';
import { positionInputs } from './rope';
import { layerTensors, type WeightSet } from './weights';

export class Transformer {
  private readonly runtime: OrtRuntime;
  private readonly tables = new Map<number, { cos: HostTensor; sin: HostTensor; mask: HostTensor }>();

  constructor(
    readonly weights: WeightSet,
    runtime?: OrtRuntime,
  ) {
    this.runtime = runtime ?? new OrtRuntime({ provider: 'cpu', threads: 0 });
    const act = weights.config.raw.hidden_act ?? 'silu';
    if (act !== 'silu') throw new UserError(`hidden_act '${String(act)}' is not supported (only silu)`);
  }

  get config() {
    return this.weights.config;
  }

  private positionTables(length: number) {
    let t = this.tables.get(length);
    if (!t) {
      const { cos, sin, mask } = positionInputs(this.config, length);
      const hd = this.config.headDim;
      t = { cos: hostTensor(cos, [length, hd]), sin: hostTensor(sin, [length, hd]), mask: hostTensor(mask, [length, length]) };
      this.tables.set(length, t);
    }
    return t;
  }

  /** Hidden states after the last decoder layer, [T, hidden]. */
  async hidden(ids: Int32Array, signal?: AbortSignal): Promise<Float32Array> {
    const { hiddenSize: H, vocabSize: V, maxPositionEmbeddings } = this.config;
    const T = ids.length;
    if (T === 0) throw new UserError('cannot run the model on an empty sequence');
    if (T > maxPositionEmbeddings) throw new UserError(`sequence length ${T} exceeds the model's max_position_embeddings ${maxPositionEmbeddings}`);
    let x: Float32Array = new Float32Array(T * H);
    for (let t = 0; t < T; t++) {
      const id = ids[t];
      if (id < 0 || id >= V) throw new UserError(`token id ${id} is outside the vocabulary (size ${V})`);
      x.set(this.weights.embed.subarray(id * H, (id + 1) * H), t * H);
    }
    const spec = decoderSpecOf(this.weights);
    const inputs = decoderWeightInputs(spec);
    const { cos, sin, mask } = this.positionTables(T);
    const session = await this.runtime.compile(decoderGraphKey(this.config, spec), () => buildDecoderGraph(this.config, spec));
    for (const layer of this.weights.layers) {
      if (signal?.aborted) throw new CancelledError();
      const feeds: Record<string, HostTensor> = { x: hostTensor(x, [T, H]), cos, sin, mask };
      const tensors = layerTensors(layer); // Q dequantized for this layer only
      for (const name of inputs) feeds[name] = hostTensor(tensors.get(name)!, layer.shapes.get(name)!);
      x = (await session.run(feeds)).y.data as Float32Array;
    }
    return x;
  }

  /** Logits [T, vocab] for every position. */
  async logits(ids: Int32Array): Promise<Float32Array> {
    const x = await this.hidden(ids);
    const session = await this.runtime.compile('head:logits', () => buildHeadGraph(this.config, 'logits'));
    const out = await session.run(this.headFeeds(x, ids.length));
    return out.logits.data as Float32Array;
  }

  /** −log p(targets[t] | ids[0..t]) for every position t. */
  async nll(ids: Int32Array, targets: Int32Array, signal?: AbortSignal): Promise<Float32Array> {
    const x = await this.hidden(ids, signal);
    const session = await this.runtime.compile('head:nll', () => buildHeadGraph(this.config, 'nll'));
    const feeds = this.headFeeds(x, ids.length);
    feeds.targets = hostTensor(BigInt64Array.from(targets, (v) => BigInt(v)), [targets.length]);
    return (await session.run(feeds)).nll.data as Float32Array;
  }

  private headFeeds(x: Float32Array, T: number): Record<string, HostTensor> {
    const { hiddenSize: H, vocabSize: V } = this.config;
    return {
      x: hostTensor(x, [T, H]),
      norm: hostTensor(this.weights.norm, [H]),
      lm_head: hostTensor(this.weights.lmHead, [V, H]),
    };
  }

  dispose(): Promise<void> {
    return this.runtime.dispose();
  }
}
