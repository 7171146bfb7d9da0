// Reverse-mode differentiation of the next-token loss through the whole model on the CPU: the
// reverse walk of model/backward.ts over ONNX runs — the decoder graph layer by layer, keeping
// only each layer's input x (one [T, H] array per layer); the head's backward graph for the
// loss and ∂L/∂x_final; then each layer's backward graph (model/decoder-graph.ts), in reverse,
// recomputing that layer's forward from its x and returning ∂L/∂x and the layer's parameter
// gradients. This file is the ONNX plumbing: compiled sessions, weights fed as graph inputs,
// outputs read by name. Peak memory: the weights (held once, by the caller), L + 1
// hidden-state arrays and one layer graph's activations. loraGradients and parameterGradients
// are the two views of it.
import { UserError } from '../errors';
import { backpropagate } from '../model/backward';
import { buildDecoderBackwardGraph, buildDecoderGraph, decoderBackwardKey, decoderGraphKey, decoderSpecOf, decoderWeightInputs, type BackwardOptions } from '../model/decoder-graph';
import { buildHeadBackwardGraph, headBackwardKey } from '../model/head-graph';
import { positionInputs } from '../model/rope';
import { embedRows } from '../model/transformer';
import { layerTensors, type WeightSet } from '../model/weights';
import { hostTensor, OrtRuntime, type HostTensor } from '../tensor/ort-runtime';

export interface GradientOptions {
  /** Sessions are cached here; pass one to reuse compiled graphs across calls (not disposed). */
  runtime?: OrtRuntime;
  /**
   * Divide the masked NLL sum by this instead of Σ mask: with gradient accumulation, the total
   * mask weight of all micro-batches makes the summed gradients those of the overall mean.
   */
  denominator?: number;
  signal?: AbortSignal;
}

export interface BackpropResult {
  /** Σ_t mask_t·nll_t / denominator. */
  loss: number;
  /** −log p(targets[t] | ids[0..t]) at every position (masked ones included, target 0 there). */
  nll: Float32Array;
  /** The denominator used (Σ mask unless given). */
  denominator: number;
  /** ∂L/∂(embedding output) [T, H]. */
  dEmbedded: Float32Array;
  /** Per decoder layer: the backward graph's gradient outputs by name (`q_proj.lora_A.grad`, …). */
  layers: Array<Map<string, Float32Array>>;
  /** The head graph's weight-gradient outputs (`norm.grad`, `lm_head.grad`) when asked for. */
  head: Map<string, Float32Array>;
}

/** The decoder-graph variant of a weight set (which biases, which LoRA modules). */
export const graphSpec = decoderSpecOf;

/**
 * Loss and gradients for one sequence. `targets[t]` is the token to predict after ids[0..t];
 * `lossMask[t]` ≥ 0 weighs position t (0 leaves it out; its target is then ignored).
 */
export async function backprop(
  weights: WeightSet,
  ids: Int32Array,
  targets: Int32Array,
  lossMask: Float32Array,
  options: GradientOptions,
  backward: BackwardOptions,
): Promise<BackpropResult> {
  const config = weights.config;
  const { hiddenSize: H, vocabSize: V, headDim: hd } = config;
  const T = ids.length;
  const act = config.raw.hidden_act ?? 'silu';
  if (act !== 'silu') throw new UserError(`hidden_act '${String(act)}' is not supported (only silu)`);
  if (T === 0) throw new UserError('cannot compute gradients on an empty sequence');
  if (T > config.maxPositionEmbeddings) throw new UserError(`sequence length ${T} exceeds the model's max_position_embeddings ${config.maxPositionEmbeddings}`);
  if (targets.length !== T || lossMask.length !== T) throw new UserError(`ids, targets and loss mask must have the same length (${T}, ${targets.length}, ${lossMask.length})`);
  let maskSum = 0;
  const safeTargets = new BigInt64Array(T);
  for (let t = 0; t < T; t++) {
    const m = lossMask[t];
    if (!(m >= 0) || !Number.isFinite(m)) throw new UserError(`loss mask value ${m} at position ${t} is not a finite non-negative number`);
    if (ids[t] < 0 || ids[t] >= V) throw new UserError(`token id ${ids[t]} is outside the vocabulary (size ${V})`);
    if (m > 0) {
      if (targets[t] < 0 || targets[t] >= V) throw new UserError(`target id ${targets[t]} at position ${t} is outside the vocabulary (size ${V})`);
      safeTargets[t] = BigInt(targets[t]);
      maskSum += m;
    }
  }
  const denominator = options.denominator ?? maskSum;
  if (!(maskSum > 0) || !(denominator > 0)) throw new UserError('the loss mask selects no position');

  const runtime = options.runtime ?? new OrtRuntime({ provider: 'cpu', threads: 0 });
  try {
    const spec = decoderSpecOf(weights);
    const names = decoderWeightInputs(spec);
    const forward = await runtime.compile(decoderGraphKey(config, spec), () => buildDecoderGraph(config, spec));
    const layerBackward = await runtime.compile(decoderBackwardKey(config, spec, backward), () => buildDecoderBackwardGraph(config, spec, backward));
    const head = await runtime.compile(headBackwardKey(config, backward), () => buildHeadBackwardGraph(config, backward));

    const { cos, sin, mask } = positionInputs(config, T);
    const positions: Record<string, HostTensor> = {
      cos: hostTensor(cos, [T, hd]),
      sin: hostTensor(sin, [T, hd]),
      mask: hostTensor(mask, [T, T]),
    };
    const layerFeeds = (l: number, x: Float32Array): Record<string, HostTensor> => {
      const layer = weights.layers[l];
      const tensors = layerTensors(layer); // a quantized backbone is dequantized per layer, per pass
      const feeds: Record<string, HostTensor> = { ...positions, x: hostTensor(x, [T, H]) };
      for (const name of names) feeds[name] = hostTensor(tensors.get(name)!, layer.shapes.get(name)!);
      return feeds;
    };
    const c = new Float32Array(T);
    for (let t = 0; t < T; t++) c[t] = lossMask[t] / denominator;
    const layers: Array<Map<string, Float32Array>> = new Array(weights.layers.length);
    const { dx, head: headOut } = await backpropagate(
      weights.layers.length,
      embedRows(weights.embed, ids, H),
      {
        forward: async (l, x) => (await forward.run(layerFeeds(l, x))).y.data as Float32Array,
        backward: async (l, x, dy) => {
          const feeds = layerFeeds(l, x);
          feeds.dy = hostTensor(dy, [T, H]);
          const out = await layerBackward.run(feeds);
          layers[l] = new Map(Object.entries(out).filter(([name]) => name !== 'dx').map(([name, t]) => [name, t.data as Float32Array]));
          return out.dx.data as Float32Array;
        },
        // Host arrays: the walk drops its references and the collector frees them.
        release: () => {},
      },
      async (x) => {
        // Head: loss and ∂L/∂x_final.
        const out = await head.run({
          x: hostTensor(x, [T, H]),
          norm: hostTensor(weights.norm, [H]),
          lm_head: hostTensor(weights.lmHead, [V, H]),
          targets: hostTensor(safeTargets, [T]),
          weights: hostTensor(c, [T]),
        });
        const loss = (out.loss.data as Float32Array)[0];
        if (!Number.isFinite(loss)) throw new UserError(`the loss is not finite (${loss}); the weights may have diverged (lower the learning rate)`);
        return { dx: out.dx.data as Float32Array, loss, out };
      },
      options.signal,
    );
    const headGrads = new Map<string, Float32Array>();
    for (const name of ['norm.grad', 'lm_head.grad']) if (headOut.out[name]) headGrads.set(name, headOut.out[name].data as Float32Array);
    return { loss: headOut.loss, nll: headOut.out.nll.data as Float32Array, denominator, dEmbedded: dx, layers, head: headGrads };
  } finally {
    if (!options.runtime) await runtime.dispose();
  }
}
