// A whole synthetic model with TinyLlama-1.1B's shapes (22 layers, hidden 2048,
// intermediate 5632, 32 heads, 4 KV heads of 64, vocab 32000, bf16), generated here onto
// disk, then quantized end to end by the engine (LoftQ NF4, r = 16, T = 5, CPU): wall time,
// peak memory, and the time as a ratio to the memory-bandwidth floor measured in this run.
//   npx tsx bench/tinyllama.bench.ts [--layers 22] [--keep DIR]
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeF32 } from '../src-main/engine/io/dtypes';
import { writeShardedSafetensors, type TensorEntry } from '../src-main/engine/io/safetensors-write';
import { runQuantize } from '../src-main/engine/jobs/quantize-job';
import { QUANTIZE_DEFAULTS } from '../src-main/engine/jobs/quantize-options';
import { Rng } from '../src-main/engine/util/random';
import { fmtGBs, measureCopyBandwidth } from './bench-util';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const L = Number(opt('--layers', '22'));
const H = 2048, I = 5632, HEADS = 32, KV = 4, HD = 64, V = 32000;
const root = opt('--keep', join(tmpdir(), `loftq-bench-tinyllama-${process.pid}`));
const modelDir = join(root, 'model');
const runDir = join(root, 'run');

/** Fast approximately-normal weights (sum of uniforms) with a few outlier columns. */
function weight(rows: number, cols: number, rng: Rng): Float32Array {
  const w = new Float32Array(rows * cols);
  const scale = 0.02 * Math.sqrt(3);
  for (let i = 0; i < w.length; i++) {
    const u = rng.nextUint32();
    // Two 16-bit uniforms summed: a triangular distribution, close enough for timing.
    w[i] = (((u & 0xffff) + (u >>> 16)) / 65535 - 1) * scale;
  }
  for (let o = 0; o < 3; o++) {
    const j = rng.nextUint32() % cols;
    for (let r = 0; r < rows; r++) w[r * cols + j] *= 6;
  }
  return w;
}

async function generate(): Promise<void> {
  await mkdir(modelDir, { recursive: true });
  const shapes: Array<[string, number[]]> = [['model.embed_tokens.weight', [V, H]]];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    shapes.push([`${p}.input_layernorm.weight`, [H]], [`${p}.self_attn.q_proj.weight`, [HEADS * HD, H]], [`${p}.self_attn.k_proj.weight`, [KV * HD, H]]);
    shapes.push([`${p}.self_attn.v_proj.weight`, [KV * HD, H]], [`${p}.self_attn.o_proj.weight`, [H, HEADS * HD]], [`${p}.post_attention_layernorm.weight`, [H]]);
    shapes.push([`${p}.mlp.gate_proj.weight`, [I, H]], [`${p}.mlp.up_proj.weight`, [I, H]], [`${p}.mlp.down_proj.weight`, [H, I]]);
  }
  shapes.push(['model.norm.weight', [H]], ['lm_head.weight', [V, H]]);
  const rng = new Rng(42);
  const entries: TensorEntry[] = shapes.map(([name, shape]) => ({
    name,
    dtype: 'BF16',
    shape,
    data: async () => encodeF32(shape.length === 1 ? new Float32Array(shape[0]).fill(1) : weight(shape[0], shape[1], rng), 'BF16'),
  }));
  await writeShardedSafetensors(modelDir, 'model', entries, {}, 1e9);
  const config = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: H, intermediate_size: I, num_hidden_layers: L,
    num_attention_heads: HEADS, num_key_value_heads: KV, vocab_size: V, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
    rope_theta: 10000, tie_word_embeddings: false, torch_dtype: 'bfloat16',
  };
  await writeFile(join(modelDir, 'config.json'), JSON.stringify(config, null, 2));
}

const bandwidth = measureCopyBandwidth();
let t0 = performance.now();
await generate();
console.log(`generated ${modelDir} (${L} layers) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

t0 = performance.now();
let matrices = 0;
const record = await runQuantize(
  { ...QUANTIZE_DEFAULTS, model: modelDir, out: runDir, method: 'loftq', bits: 4, quant: 'nf', rank: 16, alpha: 16, iters: 5, force: true },
  {
    onEvent: (e) => {
      if (e.type === 'layer' && ++matrices % 7 === 0) {
        process.stderr.write(`  layer ${matrices / 7}/${L}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      }
    },
  },
);
const seconds = (performance.now() - t0) / 1000;
const params = Number(record.summary?.target_params);
const peakBytes = process.resourceUsage().maxRSS * 1024;
// Floor: each of the T steps streams every float32 target matrix through memory once.
const floor = (5 * 4 * params) / (bandwidth / 2);
console.log(`TinyLlama-shaped LoftQ NF4 r=16 T=5: ${seconds.toFixed(1)} s (init ${Number(record.timings.init_s).toFixed(1)} s), ` +
  `${(params / 1e6).toFixed(0)} M target params, peak RSS ${(peakBytes / 2 ** 30).toFixed(2)} GiB`);
console.log(`copy bandwidth ${fmtGBs(bandwidth)}; floor ${floor.toFixed(2)} s; ratio ${(seconds / floor).toFixed(1)}×; mean err_init ${Number(record.summary?.mean_err_init).toFixed(5)} (QLoRA ${Number(record.summary?.mean_err_q).toFixed(5)})`);
if (!args.includes('--keep')) await rm(root, { recursive: true, force: true });
