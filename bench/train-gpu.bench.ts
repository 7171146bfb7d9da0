// LoRA fine-tuning throughput and memory on the GPU: whole optimizer steps of a run's adapter
// on its packed Q as `loftq train --device cuda` runs them (train/device-trainer.ts: forward
// keeping each layer's input, head and layer backwards with recomputation, clipping and AdamW
// on the device), for scripts/device/gpu-forward.sh beside scripts/device/peft_train.py.
// --profile adds one step timed kernel by kernel (bench/op-profile.ts). --dump-grads DIR
// instead writes one batch's LoRA gradients for scripts/device/peft_grads.py (ids.bin,
// grads-<precision>.bin, grads.json), on a run or on a model with a PEFT adapter.
//   node dist/bench-train-gpu.cjs --run DIR | --model DIR --adapter DIR [--seq 2048] [--batch 1] [--repeat 3]
//        [--precision bf16|fp32[,…]] [--attention fused|blocked] [--profile] [--dump-grads DIR] [--json]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceTrainer } from '../src-main/engine/train/device-trainer';
import { attachAdapter, loadModelWeights, loadQuantizedWeights } from '../src-main/engine/model/weights';
import { CudaDevice } from '../src-main/engine/tensor/cuda-device';
import type { ComputePrecision } from '../src-main/engine/tensor/nn';
import { RUN_FILES } from '../src-main/engine/runs/run-dir';
import { readPeftAdapter } from '../src-main/engine/adapter/peft';
import { paramsFromAdapter, type ParamMap } from '../src-main/engine/train/adapter-params';
import type { WeightSet } from '../src-main/engine/model/weights';
import { Rng } from '../src-main/engine/util/random';
import { median } from './bench-util';
import { formatProfile, profileOps } from './op-profile';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const runDir = value('--run');
  const modelDir = value('--model');
  const seq = Number(value('--seq') ?? 2048);
  const batch = Number(value('--batch') ?? 1);
  const repeat = Number(value('--repeat') ?? 3);
  const precisions = (value('--precision') ?? 'bf16').split(',') as ComputePrecision[];
  const initDir = runDir ? join(runDir, RUN_FILES.adapterInit) : value('--adapter');
  if (!initDir || !(runDir || modelDir)) throw new Error('--run DIR, or --model DIR --adapter DIR');
  const weights = await attachAdapter(runDir ? await loadQuantizedWeights(runDir) : await loadModelWeights(modelDir!), initDir);
  const adapter = await readPeftAdapter(initDir);
  const params = paramsFromAdapter(adapter.matrices);
  const dump = value('--dump-grads');
  if (dump) return dumpGradients(dump, weights, params, precisions, batch, seq);
  const precision = precisions[0];
  const attention = value('--attention') as 'fused' | 'blocked' | undefined;
  const device = CudaDevice.open();
  const profile = args.includes('--profile') ? profileOps(device.neuralOps(precision, { attention })) : null;
  const nn = profile?.ops ?? device.neuralOps(precision, { attention });
  nn.resetPeak();
  const trainer = new DeviceTrainer(weights, nn, device.info.name, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, noDecay: [] });
  await trainer.load(params, null);
  const rng = new Rng(1);
  const V = weights.config.vocabSize;
  const rows = () => Array.from({ length: batch }, () => Int32Array.from({ length: seq + 1 }, () => rng.nextUint32() % V));
  const stepOnce = (step: number) => trainer.step(step, { accum: 1, maxGradNorm: 1, batch: rows, lr: 1e-4 });
  const times: number[] = [];
  const losses: number[] = [];
  for (let step = 1; step <= repeat + 1; step++) {
    const t0 = performance.now();
    const r = await stepOnce(step);
    if (step > 1) times.push((performance.now() - t0) / 1000); // step 1 warms up
    losses.push(r.loss);
  }
  const memory = trainer.memoryUsage();
  // What the device lost to this process: our allocator's pool keeps its peak reserved, plus
  // the context, kernels and library workspaces (the GPU is otherwise idle on the bench machine).
  const device_ = device.deviceMemory();
  const heldBytes = device_.total - device_.free;
  let profiled: ReturnType<NonNullable<typeof profile>['stop']> | null = null;
  if (profile) {
    profile.start();
    await stepOnce(repeat + 2);
    profiled = profile.stop();
  }
  await trainer.dispose();
  await device.dispose();
  const seconds = median(times);
  const adapterParams = [...params.values()].reduce((s, p) => s + p.length, 0);
  const out = { run: runDir ?? modelDir, precision, attention: attention ?? 'default', batch, seq, tokens_per_s: (batch * seq) / seconds, seconds, times, losses, peak_bytes: memory.peak, held_bytes: heldBytes, adapter_params: adapterParams, profile: profiled };
  if (args.includes('--json')) console.log(JSON.stringify(out));
  else console.log(`${precision} batch ${batch} x ${seq}: ${Math.round(out.tokens_per_s)} tokens/s, peak ${(memory.peak / 2 ** 30).toFixed(2)} GiB, losses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  if (profiled) console.error(formatProfile(profiled));
}

/** One batch's LoRA gradients of the mean loss, per precision, with the ids they came from. */
async function dumpGradients(dir: string, weights: WeightSet, params: ParamMap, precisions: ComputePrecision[], batch: number, seq: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(7);
  const V = weights.config.vocabSize;
  const rows = Array.from({ length: batch }, () => Int32Array.from({ length: seq + 1 }, () => rng.nextUint32() % V));
  const ids = new Int32Array(batch * (seq + 1));
  rows.forEach((r, i) => ids.set(r, i * (seq + 1)));
  writeFileSync(join(dir, 'ids.bin'), Buffer.from(ids.buffer));
  const device = CudaDevice.open();
  const index: Array<{ name: string; shape: number[]; offset: number }> = [];
  const losses: Record<string, number> = {};
  for (const precision of precisions) {
    const trainer = new DeviceTrainer(weights, device.neuralOps(precision), device.info.name, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, noDecay: [] });
    try {
      await trainer.load(params, null);
      // lr 0 and no clipping: the step leaves the parameters, its gradients are the batch's.
      const r = await trainer.step(1, { accum: 1, maxGradNorm: 0, batch: () => rows, lr: 0 });
      losses[precision] = r.loss;
      const grads = await trainer.gradients();
      const total = [...grads.values()].reduce((s, g) => s + g.length, 0);
      const flat = new Float32Array(total);
      let at = 0;
      index.length = 0;
      for (const [name, g] of grads) {
        const m = adapterShape(weights, name);
        index.push({ name, shape: m, offset: at });
        flat.set(g, at);
        at += g.length;
      }
      writeFileSync(join(dir, `grads-${precision}.bin`), Buffer.from(flat.buffer));
    } finally {
      await trainer.dispose();
    }
  }
  await device.dispose();
  writeFileSync(join(dir, 'grads.json'), JSON.stringify({ batch, seq, losses, tensors: index }));
  console.log(JSON.stringify({ dumped: dir, batch, seq, losses, tensors: index.length }));
}

/** [rows, cols] of the LoRA factor a PEFT key names. */
function adapterShape(weights: WeightSet, key: string): number[] {
  const m = /layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$/.exec(key);
  if (!m) throw new Error(`not a LoRA key: ${key}`);
  return [...weights.layers[Number(m[1])].shapes.get(`${m[2]}.lora_${m[3]}`)!];
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
