// The CPU training step on the demo model (assets/demo-model, 4 layers, hidden 192): whole
// optimizer steps as `loftq train` runs them on the CPU — the HostTrainer over the ONNX
// gradients of LoraGradientSource (forward, head and layer backwards, float64 sums, clipping,
// AdamW) — with a rank-16 adapter on every projection, median of the timed steps after a
// warm-up step. A refactor's before/after check: run it on both trees in the same machine state.
//   npx tsx bench/train-demo.bench.ts [--steps 5] [--batch 4] [--seq 256] [--accum 1] [--json]
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { LLAMA_MODULES } from '../src-main/engine/io/targets';
import { loadModelWeights, type WeightSet } from '../src-main/engine/model/weights';
import { HostTrainer } from '../src-main/engine/train/host-trainer';
import { LoraGradientSource } from '../src-main/engine/train/lora-gradient-source';
import { Rng } from '../src-main/engine/util/random';
import { median } from './bench-util';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const STEPS = opt('--steps', 5);
const BATCH = opt('--batch', 4);
const SEQ = opt('--seq', 256);
const ACCUM = opt('--accum', 1);
const RANK = 16;

const root = new URL('..', import.meta.url).pathname;
const base = await loadModelWeights(join(root, 'assets', 'demo-model'));
const rng = new Rng(5);
// A rank-16 adapter on every projection with small random factors (B ≠ 0, so every gradient flows).
const layers = base.layers.map((layer) => {
  const tensors = new Map(layer.tensors);
  const shapes = new Map(layer.shapes);
  for (const m of LLAMA_MODULES) {
    const [out, inp] = layer.shapes.get(m)!;
    tensors.set(`${m}.lora_A`, rng.fillNormal(new Float32Array(RANK * inp), 1 / Math.sqrt(inp)) as Float32Array);
    tensors.set(`${m}.lora_B`, rng.fillNormal(new Float32Array(out * RANK), 0.01) as Float32Array);
    shapes.set(`${m}.lora_A`, [RANK, inp]).set(`${m}.lora_B`, [out, RANK]);
  }
  return { tensors, shapes };
});
const weights: WeightSet = { ...base, layers, lora: { modules: [...LLAMA_MODULES], scaling: 1 } };

const source = new LoraGradientSource(weights);
const params = new Map(source.paramKeys().map((key, i) => {
  const l = Math.floor(i / (2 * LLAMA_MODULES.length));
  const m = LLAMA_MODULES[Math.floor(i / 2) % LLAMA_MODULES.length];
  return [key, weights.layers[l].tensors.get(`${m}.lora_${i % 2 === 0 ? 'A' : 'B'}`)!.slice()];
}));
const trainer = new HostTrainer(source, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
await trainer.load(params, null);
const V = weights.config.vocabSize;
const rows = (): Int32Array[] => Array.from({ length: BATCH }, () => Int32Array.from({ length: SEQ + 1 }, () => rng.nextUint32() % V));
const times: number[] = [];
// CPU seconds (all threads) per step too: on a shared machine they tell the work apart from the wait.
const cpuTimes: number[] = [];
let loss = 0;
for (let step = 1; step <= STEPS + 1; step++) {
  const batches = Array.from({ length: ACCUM }, rows);
  const cpu0 = process.cpuUsage();
  const r = await trainer.step(step, { accum: ACCUM, maxGradNorm: 1, batch: (micro) => batches[micro], lr: 1e-3 });
  const cpu = process.cpuUsage(cpu0);
  loss = r.loss;
  if (step > 1) {
    times.push(r.seconds);
    cpuTimes.push((cpu.user + cpu.system) / 1e6);
  }
}
// A digest of the trained parameters: two trees that compute the same steps print the same one.
const digest = createHash('sha256');
for (const p of (await trainer.parameters()).values()) digest.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
const paramsSha = digest.digest('hex').slice(0, 16);
await source.dispose();
const t = median(times);
const tokens = ACCUM * BATCH * SEQ;
const result = { bench: 'train-demo', steps: STEPS, accum: ACCUM, batch: BATCH, seq: SEQ, rank: RANK, median_s: t, times_s: times, median_cpu_s: median(cpuTimes), tokens_per_s: tokens / t, last_loss: loss, params_sha256: paramsSha };
if (args.includes('--json')) console.log(JSON.stringify(result));
else console.log(`CPU training step, demo model (${weights.config.numLayers} layers), r=${RANK} on all projections, ${ACCUM} × ${BATCH} × ${SEQ} tokens: ${t.toFixed(3)} s (median of ${times.map((x) => x.toFixed(3)).join(', ')}) = ${(tokens / t).toFixed(0)} tokens/s (CPU ${median(cpuTimes).toFixed(3)} s per step), last loss ${loss.toFixed(4)}, parameters ${paramsSha}`);
