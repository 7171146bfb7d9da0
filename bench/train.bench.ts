// LoRA training throughput (forward + backward of one step) for a model with TinyLlama-1.1B's
// shapes, rank-16 adapters on every projection, sequence length 512, on the CPU provider,
// against the FLOP floor 6 × parameters × tokens at ORT's MatMul rate measured in this run.
//   npx tsx bench/train.bench.ts [--layers 22] [--seq 512]
import { loraGradients } from '../src-main/engine/grad/lora-gradients';
import { OrtRuntime } from '../src-main/engine/tensor/ort-runtime';
import { Rng } from '../src-main/engine/util/random';
import { measureMatmulRate, median, tinyLlamaWeights } from './bench-util';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const L = opt('--layers', 22);
const T = opt('--seq', 512);
const R = 16;
const V = 32000;
const rng = new Rng(11);
const { weights, params } = tinyLlamaWeights(L, rng, R);

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
