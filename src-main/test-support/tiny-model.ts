// Test support: writes a tiny random Llama-family model folder (config.json + safetensors)
// laid out exactly like a Hugging Face checkpoint.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../engine/util/random';
import { encodeF32, floatBytesToF32, type FloatDtype } from '../engine/io/dtypes';
import type { Architecture } from '../engine/io/hf-config';
import { writeShardedSafetensors, type TensorEntry } from '../engine/io/safetensors-write';

export function makeTempDir(prefix = 'loftq-io-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface TinyModelOptions {
  architecture?: Architecture;
  layers?: number;
  hidden?: number;
  heads?: number;
  kvHeads?: number;
  intermediate?: number;
  vocab?: number;
  dtype?: FloatDtype;
  tied?: boolean;
  /** Shard when the weights exceed this many bytes (default: one file). */
  maxShardBytes?: number;
  seed?: number;
  /** Standard deviation of the random weights (default 0.5). */
  std?: number;
  /** Merged into config.json last. */
  configOverrides?: Record<string, unknown>;
  /** Hostile models: a tensor's stored shape replaced (null: the tensor left out), or its dtype. */
  shapeOverrides?: Record<string, number[] | null>;
  dtypeOverrides?: Record<string, 'F32' | 'F16' | 'BF16' | 'I32' | 'U8'>;
}

export interface TinyModel {
  config: Record<string, unknown>;
  /** Every tensor's values as stored (already rounded to the dtype). */
  tensors: Map<string, { shape: number[]; values: Float32Array }>;
}

const TORCH_DTYPE: Record<FloatDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64' };

export async function writeTinyModel(dir: string, o: TinyModelOptions = {}): Promise<TinyModel> {
  await mkdir(dir, { recursive: true });
  const arch = o.architecture ?? 'llama';
  const L = o.layers ?? 2;
  const H = o.hidden ?? 16;
  const heads = o.heads ?? 4;
  const kv = o.kvHeads ?? 2;
  const I = o.intermediate ?? 24;
  const V = o.vocab ?? 32;
  const dtype = o.dtype ?? 'F32';
  const hd = H / heads;
  const rng = new Rng(o.seed ?? 1);

  const config: Record<string, unknown> = {
    architectures: [{ llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' }[arch]],
    model_type: arch,
    hidden_size: H,
    intermediate_size: I,
    num_hidden_layers: L,
    num_attention_heads: heads,
    num_key_value_heads: kv,
    vocab_size: V,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: o.tied ?? false,
    torch_dtype: TORCH_DTYPE[dtype],
    ...o.configOverrides,
  };

  const shapes: Array<[string, number[]]> = [['model.embed_tokens.weight', [V, H]]];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    shapes.push([`${p}.input_layernorm.weight`, [H]]);
    shapes.push([`${p}.self_attn.q_proj.weight`, [heads * hd, H]]);
    shapes.push([`${p}.self_attn.k_proj.weight`, [kv * hd, H]]);
    shapes.push([`${p}.self_attn.v_proj.weight`, [kv * hd, H]]);
    if (arch === 'qwen2') {
      shapes.push([`${p}.self_attn.q_proj.bias`, [heads * hd]]);
      shapes.push([`${p}.self_attn.k_proj.bias`, [kv * hd]]);
      shapes.push([`${p}.self_attn.v_proj.bias`, [kv * hd]]);
    }
    shapes.push([`${p}.self_attn.o_proj.weight`, [H, heads * hd]]);
    shapes.push([`${p}.post_attention_layernorm.weight`, [H]]);
    shapes.push([`${p}.mlp.gate_proj.weight`, [I, H]]);
    shapes.push([`${p}.mlp.up_proj.weight`, [I, H]]);
    shapes.push([`${p}.mlp.down_proj.weight`, [H, I]]);
  }
  shapes.push(['model.norm.weight', [H]]);
  if (!(o.tied ?? false)) shapes.push(['lm_head.weight', [V, H]]);

  for (const [name, shape] of Object.entries(o.shapeOverrides ?? {})) {
    const i = shapes.findIndex(([n]) => n === name);
    if (shape === null) shapes.splice(i, 1);
    else if (i >= 0) shapes[i] = [name, shape];
    else shapes.push([name, shape]);
  }
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  const entries: TensorEntry[] = shapes.map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const stored = o.dtypeOverrides?.[name];
    if (stored === 'I32' || stored === 'U8') {
      // Integer data of the right byte size (what a foreign or already quantized checkpoint holds).
      return { name, dtype: stored, shape, data: new Uint8Array(n * (stored === 'I32' ? 4 : 1)) };
    }
    const bytes = encodeF32(rng.fillNormal(new Float32Array(n), o.std ?? 0.5) as Float32Array, stored ?? dtype);
    tensors.set(name, { shape, values: floatBytesToF32(bytes, stored ?? dtype) });
    return { name, dtype: stored ?? dtype, shape, data: bytes };
  });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await writeShardedSafetensors(dir, 'model', entries, {}, o.maxShardBytes);
  return { config, tensors };
}
