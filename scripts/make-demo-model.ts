// Writes assets/demo-model: a small Llama-architecture model (config.json, bf16
// model.safetensors, a byte-level tokenizer.json) for `loftq demo` and the app's one-click
// demo. The weights are synthetic but shaped like trained ones: Gaussian bulk, a decaying
// low-rank part and a few outlier input channels (the features that make 2-bit hard).
// Trained weights replace them with the fine-tuning work. Deterministic: same bytes each run.
//   npx tsx scripts/make-demo-model.ts [OUT_DIR]
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { encodeF32 } from '../src-main/engine/io/dtypes';
import { writeSafetensors, type TensorEntry } from '../src-main/engine/io/safetensors-write';
import { Rng } from '../src-main/engine/util/random';

const out = resolve(process.argv[2] ?? 'assets/demo-model');
const H = 192, I = 512, L = 4, HEADS = 6, KV = 2, V = 512, HD = H / HEADS;
const rng = new Rng(20231012);

function linearWeight(rows: number, cols: number): Float32Array {
  const std = 1 / Math.sqrt(cols);
  const w = rng.fillNormal(new Float32Array(rows * cols), 0.6 * std) as Float32Array;
  // Low-rank structure with a decaying spectrum.
  const rank = 24;
  for (let k = 0; k < rank; k++) {
    const sigma = 2.5 * std * Math.sqrt(rows) * Math.exp(-k / 6) / Math.sqrt(rank);
    const u = rng.fillNormal(new Float32Array(rows), 1 / Math.sqrt(rows));
    const v = rng.fillNormal(new Float32Array(cols), 1 / Math.sqrt(cols));
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) w[i * cols + j] += sigma * u[i] * v[j];
  }
  // A few outlier input channels, as seen in trained transformers.
  for (let o = 0; o < 3; o++) {
    const j = rng.nextUint32() % cols;
    for (let i = 0; i < rows; i++) w[i * cols + j] *= 6;
  }
  return w;
}

function norm(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 1 + 0.05 * rng.normal());
}

const tensors: Array<[string, number[], Float32Array]> = [
  ['model.embed_tokens.weight', [V, H], rng.fillNormal(new Float32Array(V * H), 0.02) as Float32Array],
];
for (let l = 0; l < L; l++) {
  const p = `model.layers.${l}`;
  tensors.push([`${p}.input_layernorm.weight`, [H], norm(H)]);
  tensors.push([`${p}.self_attn.q_proj.weight`, [HEADS * HD, H], linearWeight(HEADS * HD, H)]);
  tensors.push([`${p}.self_attn.k_proj.weight`, [KV * HD, H], linearWeight(KV * HD, H)]);
  tensors.push([`${p}.self_attn.v_proj.weight`, [KV * HD, H], linearWeight(KV * HD, H)]);
  tensors.push([`${p}.self_attn.o_proj.weight`, [H, HEADS * HD], linearWeight(H, HEADS * HD)]);
  tensors.push([`${p}.post_attention_layernorm.weight`, [H], norm(H)]);
  tensors.push([`${p}.mlp.gate_proj.weight`, [I, H], linearWeight(I, H)]);
  tensors.push([`${p}.mlp.up_proj.weight`, [I, H], linearWeight(I, H)]);
  tensors.push([`${p}.mlp.down_proj.weight`, [H, I], linearWeight(H, I)]);
}
tensors.push(['model.norm.weight', [H], norm(H)]);
tensors.push(['lm_head.weight', [V, H], rng.fillNormal(new Float32Array(V * H), 0.02) as Float32Array]);

const config = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  _name_or_path: 'loftq-studio/demo-llama-2m',
  hidden_size: H,
  intermediate_size: I,
  num_hidden_layers: L,
  num_attention_heads: HEADS,
  num_key_value_heads: KV,
  head_dim: HD,
  hidden_act: 'silu',
  vocab_size: V,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  attention_bias: false,
  mlp_bias: false,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'bfloat16',
};

/** GPT-2's reversible byte → printable-character map used by byte-level BPE. */
function byteToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  return map;
}

const specials = ['<unk>', '<s>', '</s>'];
const vocab: Record<string, number> = {};
specials.forEach((t, i) => (vocab[t] = i));
byteToUnicode().forEach((ch, b) => (vocab[ch] = specials.length + b));
const tokenizer = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
  normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: null,
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
};

await mkdir(out, { recursive: true });
const entries: TensorEntry[] = tensors.map(([name, shape, values]) => ({ name, dtype: 'BF16', shape, data: encodeF32(values, 'BF16') }));
await writeSafetensors(join(out, 'model.safetensors'), entries);
await writeFile(join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
await writeFile(join(out, 'tokenizer.json'), JSON.stringify(tokenizer) + '\n');
await writeFile(
  join(out, 'tokenizer_config.json'),
  JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', model_max_length: 512 }, null, 2) + '\n',
);
const params = tensors.reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
console.log(`wrote ${out}: ${params.toLocaleString('en-US')} parameters`);
