// The forward pass of a Llama-family decoder on the CPU through onnxruntime: embedding lookup
// in JS, one session run per decoder layer (layer.ts compiled once into a graph that every
// layer shares, weights fed as inputs), then the head. Sessions are compiled once per graph
// variant and reused.
import { UserError } from '../errors';
import { hostTensor, OrtRuntime, type HostTensor } from '../tensor/ort-runtime';
import { buildDecoderGraph, decoderGraphKey, decoderSpecOf, decoderWeightInputs } from './decoder-graph';
import { buildHeadGraph } from './head-graph';
import { positionInputs } from './rope';
import { layerTensors, type WeightSet } from './weights';
import { forwardLayers } from './forward';
import { checkSequences, type LanguageModel } from './language-model';

export class Transformer implements LanguageModel {
  readonly where = 'CPU';
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
    const H = this.config.hiddenSize;
    const T = checkSequences(this.config, ids, 1);
    const x = embedRows(this.weights.embed, ids, H);
    const spec = decoderSpecOf(this.weights);
    const inputs = decoderWeightInputs(spec);
    const { cos, sin, mask } = this.positionTables(T);
    const session = await this.runtime.compile(decoderGraphKey(this.config, spec), () => buildDecoderGraph(this.config, spec));
    return forwardLayers(
      this.weights.layers.length,
      x,
      async (l, x) => {
        const layer = this.weights.layers[l];
        const feeds: Record<string, HostTensor> = { x: hostTensor(x, [T, H]), cos, sin, mask };
        const tensors = layerTensors(layer); // Q dequantized for this layer only
        for (const name of inputs) feeds[name] = hostTensor(tensors.get(name)!, layer.shapes.get(name)!);
        return (await session.run(feeds)).y.data as Float32Array;
      },
      { signal },
    );
  }

  /** Logits [T, vocab] for every position. */
  async logits(ids: Int32Array): Promise<Float32Array> {
    const x = await this.hidden(ids);
    const session = await this.runtime.compile('head:logits', () => buildHeadGraph(this.config, 'logits'));
    const out = await session.run(this.headFeeds(x, ids.length));
    return out.logits.data as Float32Array;
  }

  /** −log p(targets[t] | ids[0..t]) for every position t, sequence by sequence. */
  async nll(ids: Int32Array, targets: Int32Array, signal?: AbortSignal, batch = 1): Promise<Float32Array> {
    if (batch > 1) {
      const T = checkSequences(this.config, ids, batch);
      const out = new Float32Array(ids.length);
      for (let b = 0; b < batch; b++) out.set(await this.nll(ids.subarray(b * T, (b + 1) * T), targets.subarray(b * T, (b + 1) * T), signal), b * T);
      return out;
    }
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

  memoryUsage(): null {
    return null;
  }

  dispose(): Promise<void> {
    return this.runtime.dispose();
  }
}

/** The embedding rows of ids, [T, hidden] (ids checked by the caller). */
export function embedRows(table: Float32Array, ids: Int32Array, H: number): Float32Array {
  const x = new Float32Array(ids.length * H);
  for (let t = 0; t < ids.length; t++) x.set(table.subarray(ids[t] * H, (ids[t] + 1) * H), t * H);
  return x;
}
