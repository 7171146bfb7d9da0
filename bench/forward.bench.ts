// Forward throughput of a model with TinyLlama-1.1B's shapes (random float32 weights made in
// memory) at sequence length 512 on the CPU provider, against the FLOP floor of this machine
// measured in the same run: ORT's MatMul rate on one large product.
//   npx tsx bench/forward.bench.ts [--layers 22] [--seq 512]
import { parseModelConfig } from '../src-main/engine/io/hf-config';
import { LLAMA_MODULES } from '../src-main/engine/io/targets';
import { Transformer } from '../src-main/engine/model/transformer';
import type { LayerWeights, WeightSet } from '../src-main/engine/model/weights';
import { Rng } from '../src-main/engine/util/random';
import { measureMatmulRate, median } from './bench-util';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const L = opt('--layers', 22);
const T = opt('--seq', 512);
const H = 2048, I = 5632, HEADS = 32, KV = 4, HD = 64, V = 32000;
const config = parseModelConfig({
  model_type: 'llama', hidden_size: H, intermediate_size: I, num_hidden_layers: L, num_attention_heads: HEADS,
  num_key_value_heads: KV, vocab_size: V, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000, torch_dtype: 'float32',
});

const rng = new Rng(7);
function random(n: number, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((rng.nextUint32() / 4294967296) * 2 - 1) * std * 1.732;
  return a;
}
const shapes: Record<string, number[]> = {
  q_proj: [HEADS * HD, H], k_proj: [KV * HD, H], v_proj: [KV * HD, H], o_proj: [H, HEADS * HD],
  gate_proj: [I, H], up_proj: [I, H], down_proj: [H, I],
};
const layers: LayerWeights[] = [];
let params = 0;
for (let l = 0; l < L; l++) {
  const tensors = new Map<string, Float32Array>();
  const shapeMap = new Map<string, number[]>();
  for (const n of ['input_layernorm', 'post_attention_layernorm']) {
    tensors.set(n, new Float32Array(H).fill(1));
    shapeMap.set(n, [H]);
  }
  for (const m of LLAMA_MODULES) {
    const [o, i] = shapes[m];
    tensors.set(m, random(o * i, 1 / Math.sqrt(i)));
    shapeMap.set(m, shapes[m]);
    params += o * i;
  }
  layers.push({ tensors, shapes: shapeMap });
}
const embed = random(V * H, 0.02);
const lmHead = random(V * H, 0.02);
params += V * H; // lm_head (the embedding lookup costs no FLOPs)
const weights: WeightSet = { config, embed, layers, norm: new Float32Array(H).fill(1), lmHead, lora: null };

// The FLOP floor's rate, measured in this run.
const peak = await measureMatmulRate();

const model = new Transformer(weights);
const ids = Int32Array.from({ length: T }, () => rng.nextUint32() % V);
const targets = Int32Array.from({ length: T }, () => rng.nextUint32() % V);
await model.nll(ids, targets); // warm-up: session creation
const times: number[] = [];
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  await model.nll(ids, targets);
  times.push((performance.now() - t0) / 1000);
}
await model.dispose();
const t = median(times);
// 2 FLOPs per weight per token, plus attention's QKᵀ and PV (causal: half of 2·2·T·hd per head).
const attention = L * HEADS * 2 * T * T * HD;
const flops = 2 * params * T + attention;
const tokensPerSecond = T / t;
const floorTokensPerSecond = T / (flops / peak);
console.log(`forward, TinyLlama shapes (${L} layers), seq ${T}: ${t.toFixed(2)} s (median of ${times.map((x) => x.toFixed(2)).join(', ')}) = ${tokensPerSecond.toFixed(1)} tokens/s`);
console.log(`ORT MatMul ${(peak / 1e9).toFixed(1)} GFLOP/s → floor ${floorTokensPerSecond.toFixed(1)} tokens/s; achieved ${(100 * tokensPerSecond / floorTokensPerSecond).toFixed(0)}% of it (${(flops / t / 1e9).toFixed(1)} GFLOP/s)`);
