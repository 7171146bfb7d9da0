// LoRA training throughput (forward + backward of one step) for a model with TinyLlama-1.1B's
// shapes, rank-16 adapters on every projection, sequence length 512, on the CPU provider,
// against the FLOP floor 6 × parameters × tokens at ORT's MatMul rate measured in this run.
//   npx tsx bench/train.bench.ts [--layers 22] [--seq 512]
import { loraGradients } from '../src-main/engine/grad/lora-gradients';
import { parseModelConfig } from '../src-main/engine/io/hf-config';
import { LLAMA_MODULES } from '../src-main/engine/io/targets';
import type { LayerWeights, WeightSet } from '../src-main/engine/model/weights';
import { OrtRuntime } from '../src-main/engine/tensor/ort-runtime';
import { Rng } from '../src-main/engine/util/random';
import { measureMatmulRate, median } from './bench-util';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const L = opt('--layers', 22);
const T = opt('--seq', 512);
const R = 16;
const H = 2048, I = 5632, HEADS = 32, KV = 4, HD = 64, V = 32000;
const config = parseModelConfig({
  model_type: 'llama', hidden_size: H, intermediate_size: I, num_hidden_layers: L, num_attention_heads: HEADS,
  num_key_value_heads: KV, vocab_size: V, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000, torch_dtype: 'float32',
});
const rng = new Rng(11);
const random = (n: number, std: number) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((rng.nextUint32() / 4294967296) * 2 - 1) * std * 1.732;
  return a;
};
const shapes: Record<string, [number, number]> = {
  q_proj: [HEADS * HD, H], k_proj: [KV * HD, H], v_proj: [KV * HD, H], o_proj: [H, HEADS * HD], gate_proj: [I, H], up_proj: [I, H], down_proj: [H, I],
};
let params = 0;
const layers: LayerWeights[] = [];
for (let l = 0; l < L; l++) {
  const tensors = new Map<string, Float32Array>();
  const shapeMap = new Map<string, number[]>();
  for (const n of ['input_layernorm', 'post_attention_layernorm']) {
    tensors.set(n, new Float32Array(H).fill(1));
    shapeMap.set(n, [H]);
  }
  for (const m of LLAMA_MODULES) {
    const [o, i] = shapes[m];
    tensors.set(m, random(o * i, 1 / Math.sqrt(i))).set(`${m}.lora_A`, random(R * i, 1 / Math.sqrt(i))).set(`${m}.lora_B`, random(o * R, 0.01));
    shapeMap.set(m, [o, i]).set(`${m}.lora_A`, [R, i]).set(`${m}.lora_B`, [o, R]);
    params += o * i;
  }
  layers.push({ tensors, shapes: shapeMap });
}
params += V * H; // lm_head
const weights: WeightSet = {
  config, embed: random(V * H, 0.02), layers, norm: new Float32Array(H).fill(1), lmHead: random(V * H, 0.02),
  lora: { modules: [...LLAMA_MODULES], scaling: 1 },
};

// The FLOP floor's rate, measured in this run.
const peak = await measureMatmulRate();

const runtime = new OrtRuntime();
const ids = Int32Array.from({ length: T }, () => rng.nextUint32() % V);
const targets = Int32Array.from({ length: T }, () => rng.nextUint32() % V);
const mask = new Float32Array(T).fill(1);
await loraGradients(weights, ids, targets, mask, { runtime }); // warm-up: session creation
const times: number[] = [];
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  await loraGradients(weights, ids, targets, mask, { runtime });
  times.push((performance.now() - t0) / 1000);
}
await runtime.dispose();
const t = median(times);
const floorSeconds = (6 * params * T) / peak;
console.log(`LoRA training step, TinyLlama shapes (${L} layers), r=${R} on all projections, seq ${T}: ${t.toFixed(2)} s (median of ${times.map((x) => x.toFixed(2)).join(', ')}) = ${(T / t).toFixed(1)} tokens/s`);
console.log(`ORT MatMul ${(peak / 1e9).toFixed(1)} GFLOP/s; floor 6·params·tokens = ${floorSeconds.toFixed(2)} s → ${(T / floorSeconds).toFixed(1)} tokens/s; achieved ${(100 * floorSeconds / t).toFixed(0)}% of it; peak RSS ${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)} GiB`);
