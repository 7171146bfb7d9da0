// Forward throughput of a model with TinyLlama-1.1B's shapes (random float32 weights made in
// memory) at sequence length 512 on the CPU provider, against the FLOP floor of this machine
// measured in the same run: ORT's MatMul rate on one large product.
//   npx tsx bench/forward.bench.ts [--layers 22] [--seq 512]
import { Transformer } from '../src-main/engine/model/transformer';
import { Rng } from '../src-main/engine/util/random';
import { measureMatmulRate, median, tinyLlamaWeights } from './bench-util';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const L = opt('--layers', 22);
const T = opt('--seq', 512);
const V = 32000;
const rng = new Rng(7);
const { weights, params } = tinyLlamaWeights(L, rng);

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
const attention = L * weights.config.numHeads * 2 * T * T * weights.config.headDim;
const flops = 2 * params * T + attention;
const tokensPerSecond = T / t;
const floorTokensPerSecond = T / (flops / peak);
console.log(`forward, TinyLlama shapes (${L} layers), seq ${T}: ${t.toFixed(2)} s (median of ${times.map((x) => x.toFixed(2)).join(', ')}) = ${tokensPerSecond.toFixed(1)} tokens/s`);
console.log(`ORT MatMul ${(peak / 1e9).toFixed(1)} GFLOP/s → floor ${floorTokensPerSecond.toFixed(1)} tokens/s; achieved ${(100 * tokensPerSecond / floorTokensPerSecond).toFixed(0)}% of it (${(flops / t / 1e9).toFixed(1)} GFLOP/s)`);
