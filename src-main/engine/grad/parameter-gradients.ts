// Gradients of the next-token loss with respect to every parameter of the model (for the
// demo model's pretraining): embedding, each layer's norms, projections and biases (and
// LoRA A/B when an adapter is attached), the final norm and lm_head. Same passes as
// loraGradients (backprop.ts), with the weight-gradient outputs of the graphs switched on.
//   embedding  x0_t = E[id_t]  ⇒  dE[v] = Σ_{t: id_t = v} dx0_t  (+ dlm_head when tied)
import type { WeightSet } from '../model/weights';
import { decoderWeightInputs, gradName } from '../model/decoder-graph';
import { backprop, graphSpec, type GradientOptions } from './backprop';


export interface ParameterGradientResult {
  loss: number;
  nll: Float32Array;
  denominator: number;
  /** ∂L/∂embed [V, H]; includes lm_head's gradient when the embeddings are tied. */
  embed: Float32Array;
  /** Per decoder layer, keyed like LayerWeights.tensors (input_layernorm, q_proj, q_proj.bias, q_proj.lora_A, …). */
  layers: Array<Map<string, Float32Array>>;
  norm: Float32Array;
  /** ∂L/∂lm_head [V, H]; null when tied to the embedding (then folded into `embed`). */
  lmHead: Float32Array | null;
}

export async function parameterGradients(
  weights: WeightSet,
  ids: Int32Array,
  targets: Int32Array,
  lossMask: Float32Array,
  options: GradientOptions = {},
): Promise<ParameterGradientResult> {
  const { hiddenSize: H, vocabSize: V } = weights.config;
  const r = await backprop(weights, ids, targets, lossMask, options, { weightGrads: true });
  const names = decoderWeightInputs(graphSpec(weights));
  const layers = r.layers.map((out) => new Map(names.map((n) => [n, out.get(gradName(n))!])));
  const embed = new Float32Array(V * H);
  for (let t = 0; t < ids.length; t++) {
    const row = ids[t] * H;
    for (let i = 0; i < H; i++) embed[row + i] += r.dEmbedded[t * H + i];
  }
  const dHead = r.head.get('lm_head.grad')!;
  const tied = weights.lmHead === weights.embed;
  if (tied) for (let i = 0; i < embed.length; i++) embed[i] += dHead[i];
  return { loss: r.loss, nll: r.nll, denominator: r.denominator, embed, layers, norm: r.head.get('norm.grad')!, lmHead: tied ? null : dHead };
}
