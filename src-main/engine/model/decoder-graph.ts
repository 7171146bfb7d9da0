// The ONNX graphs of one Llama-family decoder layer (the definitions in layer.ts compiled for
// the CPU through graph-ops.ts), with its weights as graph inputs: one compiled session serves
// every layer and every weight source (full precision, Q, Q + LoRA), and the weights stay in
// the caller's memory, never copied into the model. Shapes are per sequence: x [T, hidden].
// The forward graph maps x to y; the backward graph takes the same inputs plus dy = ∂L/∂y,
// recomputes the forward from x inside the graph (activation recomputation: between the
// passes nothing but each layer's input is kept) and outputs dx = ∂L/∂x and the parameter
// gradients (graph-ops.ts: the LoRA factors'; with weightGrads every weight's).
import type { ModelConfig } from '../io/hf-config';
import { LLAMA_MODULES as LINEAR_MODULES, type LinearModule } from '../io/targets';
import { OnnxGraph } from '../tensor/onnx-graph';
import { GraphOps, projectionDims } from './graph-ops';
import { decoderLayer, decoderLayerBackward, type LayerValues } from './layer';

export { gradName, loraGradNames, projectionDims } from './graph-ops';

export interface DecoderGraphSpec {
  /** Modules whose weight input comes with a `.bias` input. */
  biases: LinearModule[];
  /** Modules with a LoRA branch (inputs `.lora_A` [r, in], `.lora_B` [out, r]). */
  lora: LinearModule[];
  loraScaling: number;
}

/** The model dimensions a compiled layer graph depends on (sessions are shared per runtime). */
export function layerDimsKey(c: ModelConfig): string {
  return [c.hiddenSize, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.rmsNormEps].join(',');
}

export function decoderGraphKey(config: ModelConfig, spec: DecoderGraphSpec): string {
  return `decoder:${layerDimsKey(config)}:${spec.biases.join(',')}:${spec.lora.join(',')}:${spec.loraScaling}`;
}

/** The graph variant a weight set needs: which biases exist, which modules carry LoRA. */
export function decoderSpecOf(weights: { layers: Array<{ tensors: Map<string, Float32Array> }>; lora: { modules: LinearModule[]; scaling: number } | null }): DecoderGraphSpec {
  const first = weights.layers[0].tensors;
  const biases = LINEAR_MODULES.filter((m) => first.has(`${m}.bias`));
  return { biases, lora: weights.lora?.modules ?? [], loraScaling: weights.lora?.scaling ?? 0 };
}

/** Input names of the layer's weights, in a fixed order. */
export function decoderWeightInputs(spec: DecoderGraphSpec): string[] {
  const names = ['input_layernorm', 'post_attention_layernorm'];
  for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as LinearModule[]) {
    names.push(m);
    if (spec.biases.includes(m)) names.push(`${m}.bias`);
    if (spec.lora.includes(m)) names.push(`${m}.lora_A`, `${m}.lora_B`);
  }
  return names;
}

/** The inputs every layer graph takes (forward and backward): x, positions, and the weights. */
export function declareLayerInputs(g: OnnxGraph, config: ModelConfig, spec: DecoderGraphSpec): void {
  const { hiddenSize: H, headDim: hd } = config;
  const { outDim, inDim } = projectionDims(config);
  g.input('x', 'float32', ['T', H]);
  g.input('cos', 'float32', ['T', hd]);
  g.input('sin', 'float32', ['T', hd]);
  g.input('mask', 'float32', ['T', 'T']);
  g.input('input_layernorm', 'float32', [H]);
  g.input('post_attention_layernorm', 'float32', [H]);
  for (const m of LINEAR_MODULES) {
    g.input(m, 'float32', [outDim[m], inDim[m]]);
    if (spec.biases.includes(m)) g.input(`${m}.bias`, 'float32', [outDim[m]]);
    if (spec.lora.includes(m)) {
      g.input(`${m}.lora_A`, 'float32', ['r', inDim[m]]);
      g.input(`${m}.lora_B`, 'float32', [outDim[m], 'r']);
    }
  }
}

export interface BackwardOptions {
  /** Also output the gradients of the backbone weights (norms, projections, biases). */
  weightGrads: boolean;
}

export function buildDecoderGraph(config: ModelConfig, spec: DecoderGraphSpec): OnnxGraph {
  const g = new OnnxGraph('decoder_layer');
  declareLayerInputs(g, config, spec);
  const y = decoderLayer(new GraphOps(g, config, { ...spec, weightGrads: false }), 'x');
  g.output('y', 'float32', ['T', config.hiddenSize], y);
  return g;
}

export function decoderBackwardKey(config: ModelConfig, spec: DecoderGraphSpec, options: BackwardOptions = { weightGrads: false }): string {
  return `decoder-backward:${layerDimsKey(config)}:${spec.biases.join(',')}:${spec.lora.join(',')}:${spec.loraScaling}:${options.weightGrads ? 'full' : 'lora'}`;
}

export function buildDecoderBackwardGraph(config: ModelConfig, spec: DecoderGraphSpec, options: BackwardOptions = { weightGrads: false }): OnnxGraph {
  const g = new OnnxGraph('decoder_layer_backward');
  declareLayerInputs(g, config, spec);
  g.input('dy', 'float32', ['T', config.hiddenSize]);
  const ops = new GraphOps(g, config, { ...spec, weightGrads: options.weightGrads });
  const values: Partial<LayerValues<string>> = {};
  decoderLayer(ops, 'x', values);
  g.output('dx', 'float32', ['T', config.hiddenSize], decoderLayerBackward(ops, values as LayerValues<string>, 'dy'));
  return g;
}
