// The ONNX graph of one Llama-family decoder layer (the definition in layer.ts, compiled for
// the CPU), with its weights as graph inputs: one compiled session serves every layer and
// every weight source (full precision, Q, Q + LoRA), and the weights stay in the caller's
// memory, never copied into the model. Shapes are per sequence: x [T, hidden].
import type { ModelConfig } from '../io/hf-config';
import { LLAMA_MODULES as LINEAR_MODULES, type LinearModule } from '../io/targets';
import { OnnxGraph } from '../tensor/onnx-graph';
import { decoderLayer, type LayerNormName, type LayerOps } from './layer';

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

/** [out, in] of every projection of a layer. */
export function projectionDims(config: ModelConfig): { outDim: Record<LinearModule, number>; inDim: Record<LinearModule, number> } {
  const { hiddenSize: H, numHeads: nH, numKvHeads: nKV, headDim: hd, intermediateSize: I } = config;
  return {
    outDim: { q_proj: nH * hd, k_proj: nKV * hd, v_proj: nKV * hd, o_proj: H, gate_proj: I, up_proj: I, down_proj: H },
    inDim: { q_proj: H, k_proj: H, v_proj: H, o_proj: nH * hd, gate_proj: H, up_proj: H, down_proj: I },
  };
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

/** The layer's operations as ONNX nodes: values are graph value names. */
class GraphLayerOps implements LayerOps<string> {
  private readonly epsConst: string;
  private readonly halfSplit: string;
  constructor(
    private readonly g: OnnxGraph,
    private readonly config: ModelConfig,
    private readonly spec: DecoderGraphSpec,
  ) {
    this.epsConst = g.constant('float32', [], [config.rmsNormEps]);
    this.halfSplit = g.constant('int64', [2], [config.headDim / 2, config.headDim / 2]);
  }

  private shape(dims: number[]): string {
    return this.g.constant('int64', [dims.length], dims);
  }

  rmsNorm(x: string, w: LayerNormName): string {
    const g = this.g;
    const meanSq = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSq, this.epsConst])])]);
    return g.op('Mul', [g.op('Mul', [x, inv]), w]);
  }

  linear(x: string, m: LinearModule): string {
    const { g, spec } = this;
    const base = g.op('Gemm', spec.biases.includes(m) ? [x, m, `${m}.bias`] : [x, m], { transB: 1 });
    if (!spec.lora.includes(m)) return base;
    const down = g.op('Gemm', [x, `${m}.lora_A`], { transB: 1 });
    const up = g.op('Gemm', [down, `${m}.lora_B`], { transB: 1, alpha: { float: spec.loraScaling } });
    return g.op('Add', [base, up]);
  }

  // [T, heads·hd] → [heads, T, hd] with rotary applied: x·cos + rotate_half(x)·sin.
  private heads(x: string, n: number, rope: boolean): string {
    const g = this.g;
    const hd = this.config.headDim;
    const t = g.op('Transpose', [g.op('Reshape', [x, this.shape([0, n, hd])])], { perm: [1, 0, 2] });
    if (!rope) return t;
    const [x1, x2] = g.node('Split', [t, this.halfSplit], { axis: -1 }, 2);
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
    return g.op('Add', [g.op('Mul', [t, 'cos']), g.op('Mul', [rotated, 'sin'])]);
  }

  // Grouped-query attention: KV head j serves query heads j·g … j·g+g−1 (HF's repeat_kv).
  private repeatKv(x: string): string {
    const { numHeads: nH, numKvHeads: nKV, headDim: hd } = this.config;
    const group = nH / nKV;
    if (group === 1) return x;
    const g = this.g;
    const expanded = g.op('Expand', [g.op('Unsqueeze', [x, g.constant('int64', [1], [1])]), this.shape([nKV, group, 1, 1])]);
    return g.op('Reshape', [expanded, this.shape([nH, -1, hd])]);
  }

  attention(qIn: string, kIn: string, vIn: string): string {
    const g = this.g;
    const { numHeads: nH, numKvHeads: nKV, headDim: hd } = this.config;
    const q = this.heads(qIn, nH, true);
    const k = this.repeatKv(this.heads(kIn, nKV, true));
    const v = this.repeatKv(this.heads(vIn, nKV, false));
    const scores = g.op('Add', [
      g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 2, 1] })]), g.constant('float32', [], [1 / Math.sqrt(hd)])]),
      'mask',
    ]);
    const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
    return g.op('Reshape', [g.op('Transpose', [context], { perm: [1, 0, 2] }), this.shape([0, nH * hd])]);
  }

  swiglu(gate: string, up: string): string {
    const g = this.g;
    return g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
  }

  residual(x: string, y: string): string {
    return this.g.op('Add', [x, y]);
  }
}

export function buildDecoderGraph(config: ModelConfig, spec: DecoderGraphSpec): OnnxGraph {
  const g = new OnnxGraph('decoder_layer');
  declareLayerInputs(g, config, spec);
  const y = decoderLayer(new GraphLayerOps(g, config, spec), 'x');
  g.op('Identity', [y], {}, 'y');
  g.output('y', 'float32', ['T', config.hiddenSize]);
  return g;
}
