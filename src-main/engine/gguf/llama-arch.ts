// How llama.cpp names and lays out a Hugging Face Llama/Mistral/Qwen2 checkpoint: the GGUF
// architecture and its hyper-parameter keys, the tensor names, and the one layout change.
// llama.cpp's "llama" architecture rotates adjacent pairs (2p, 2p+1) where transformers rotates
// halves (p, p + d/2), so q and k rows are reordered within each head; its "qwen2" rotates
// halves like transformers and needs no reordering.
import { UserError } from '../errors';
import type { ModelConfig } from '../io/hf-config';
import { inverseFrequencies } from '../model/rope';
import { gguf, type GgufValue } from './write';

export type GgufArchitecture = 'llama' | 'qwen2';

export interface ArchitectureLayout {
  arch: GgufArchitecture;
  /** Hyper-parameter metadata under `<arch>.` (general.* and tokenizer.* are added elsewhere). */
  metadata: Map<string, GgufValue>;
  /** llama3-style RoPE scaling as llama.cpp wants it: per-frequency divisors (rope_freqs.weight), or null. */
  ropeFreqs: Float32Array | null;
  /** Things llama.cpp will do differently from the engine, said to the user. */
  notes: string[];
}

const LAYER_TENSORS: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.bias': 'attn_output.bias',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
  'mlp.gate_proj.bias': 'ffn_gate.bias',
  'mlp.up_proj.bias': 'ffn_up.bias',
  'mlp.down_proj.bias': 'ffn_down.bias',
};
const TOP_TENSORS: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

export function ggufArchitectureOf(config: ModelConfig): GgufArchitecture {
  // Mistral checkpoints are llama.cpp's "llama" (its converter maps them so).
  return config.architecture === 'qwen2' ? 'qwen2' : 'llama';
}

/** The GGUF name of a Hugging Face tensor, or null when llama.cpp has no place for it. */
export function ggufTensorName(hfName: string): string | null {
  if (hfName in TOP_TENSORS) return TOP_TENSORS[hfName];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!m || !(m[2] in LAYER_TENSORS)) return null;
  return `blk.${m[1]}.${LAYER_TENSORS[m[2]]}`;
}

/**
 * For the llama architecture, the heads of a q or k tensor (weight rows or bias), whose rows
 * must be reordered; null for every other tensor and for qwen2.
 */
export function ropeRowHeads(arch: GgufArchitecture, config: ModelConfig, hfName: string): number | null {
  if (arch !== 'llama') return null;
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(hfName)) return config.numHeads;
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(hfName)) return config.numKvHeads;
  return null;
}

/**
 * The source row of each destination row after llama.cpp's reordering of `rows` rows in
 * `heads` heads: within a head, destination row 2p + h comes from row h·(d/2) + p.
 */
export function ropeRowOrder(rows: number, heads: number): Int32Array {
  const d = rows / heads;
  if (!Number.isInteger(d) || d % 2 !== 0) throw new Error(`${rows} rows do not split into ${heads} heads of an even size`);
  const order = new Int32Array(rows);
  for (let head = 0; head < heads; head++) {
    for (let p = 0; p < d / 2; p++) {
      for (let h = 0; h < 2; h++) order[head * d + 2 * p + h] = head * d + h * (d / 2) + p;
    }
  }
  return order;
}

/** Rows of a row-major [rows, rowBytes] byte matrix in `order` (order[i] = source of row i). */
export function reorderRows(data: Uint8Array, rows: number, order: Int32Array): Uint8Array {
  const rowBytes = data.length / rows;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < rows; i++) out.set(data.subarray(order[i] * rowBytes, (order[i] + 1) * rowBytes), i * rowBytes);
  return out;
}

export function architectureLayout(config: ModelConfig, contextLength: number): ArchitectureLayout {
  const arch = ggufArchitectureOf(config);
  const act = config.raw.hidden_act ?? 'silu';
  if (act !== 'silu') throw new UserError(`llama.cpp's ${arch} architecture computes silu, but the model's hidden_act is ${JSON.stringify(act)}; it cannot be exported to GGUF`);
  const k = (key: string) => `${arch}.${key}`;
  const md = new Map<string, GgufValue>([
    [k('context_length'), gguf.u32(contextLength)],
    [k('embedding_length'), gguf.u32(config.hiddenSize)],
    [k('block_count'), gguf.u32(config.numLayers)],
    [k('feed_forward_length'), gguf.u32(config.intermediateSize)],
    [k('attention.head_count'), gguf.u32(config.numHeads)],
    [k('attention.head_count_kv'), gguf.u32(config.numKvHeads)],
    [k('attention.key_length'), gguf.u32(config.headDim)],
    [k('attention.value_length'), gguf.u32(config.headDim)],
    [k('attention.layer_norm_rms_epsilon'), gguf.f32(config.rmsNormEps)],
    [k('rope.dimension_count'), gguf.u32(config.headDim)],
    [k('rope.freq_base'), gguf.f32(config.ropeTheta)],
    [k('vocab_size'), gguf.u32(config.vocabSize)],
  ]);
  const notes: string[] = [];
  let ropeFreqs: Float32Array | null = null;
  const s = config.ropeScaling;
  const type = s ? String(s.rope_type ?? s.type ?? 'default') : 'default';
  if (type === 'linear') {
    md.set(k('rope.scaling.type'), gguf.str('linear'));
    md.set(k('rope.scaling.factor'), gguf.f32(Number(s!.factor)));
  } else if (type === 'llama3') {
    if (arch !== 'llama') throw new UserError(`llama.cpp's ${arch} architecture has no llama3 RoPE scaling; this model cannot be exported to GGUF`);
    // llama.cpp divides each base frequency by rope_freqs[i]: the divisor is base / scaled.
    const scaled = inverseFrequencies(config);
    const base = inverseFrequencies({ ...config, ropeScaling: null });
    ropeFreqs = Float32Array.from(base, (f, i) => f / scaled[i]);
  } else if (type !== 'default') {
    throw new UserError(`rope scaling '${type}' has no GGUF export here (supported: default, linear, llama3)`);
  }
  const window = config.raw.sliding_window;
  if (arch === 'llama' && typeof window === 'number' && window > 0 && window < contextLength) {
    notes.push(`the model's sliding window of ${window} tokens is not applied by llama.cpp's llama architecture: contexts longer than ${window} tokens attend to everything`);
  }
  if (config.mlpBias && arch === 'qwen2') throw new UserError("llama.cpp's qwen2 architecture has no MLP biases; this model cannot be exported to GGUF");
  return { arch, metadata: md, ropeFreqs, notes };
}
