// LoRA fine-tuning throughput and memory on the GPU: whole optimizer steps of a run's adapter
// on its packed Q as `loftq train --device cuda` runs them (train/device-trainer.ts: forward
// keeping each layer's input, head and layer backwards with recomputation, clipping and AdamW
// on the device), for scripts/device/gpu-forward.sh beside scripts/device/peft_train.py.
// --profile adds one step timed kernel by kernel (bench/op-profile.ts).
//   node dist/bench-train-gpu.cjs --run DIR [--seq 2048] [--batch 1] [--repeat 3] [--precision bf16|fp32] [--attention fused|blocked] [--profile] [--json]
import { join } from 'node:path';
import { DeviceTrainer } from '../src-main/engine/train/device-trainer';
import { attachAdapter, loadQuantizedWeights } from '../src-main/engine/model/weights';
import { CudaDevice } from '../src-main/engine/tensor/cuda-device';
import type { ComputePrecision } from '../src-main/engine/tensor/nn';
import { RUN_FILES } from '../src-main/engine/runs/run-dir';
import { paramsFromAdapter, readPeftAdapter } from '../src-main/engine/train/adapter-params';
import { Rng } from '../src-main/engine/util/random';
import { median } from './bench-util';
import { formatProfile, profileOps } from './op-profile';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const runDir = value('--run');
  if (!runDir) throw new Error('--run DIR');
  const seq = Number(value('--seq') ?? 2048);
  const batch = Number(value('--batch') ?? 1);
  const repeat = Number(value('--repeat') ?? 3);
  const precision = (value('--precision') ?? 'bf16') as ComputePrecision;
  const initDir = join(runDir, RUN_FILES.adapterInit);
  const weights = await attachAdapter(await loadQuantizedWeights(runDir), initDir);
  const adapter = await readPeftAdapter(initDir);
  const params = paramsFromAdapter(adapter.matrices);
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
  const out = { run: runDir, precision, attention: attention ?? 'default', batch, seq, tokens_per_s: (batch * seq) / seconds, seconds, times, losses, peak_bytes: memory.peak, adapter_params: adapterParams, profile: profiled };
  if (args.includes('--json')) console.log(JSON.stringify(out));
  else console.log(`${precision} batch ${batch} x ${seq}: ${Math.round(out.tokens_per_s)} tokens/s, peak ${(memory.peak / 2 ** 30).toFixed(2)} GiB, losses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  if (profiled) console.error(formatProfile(profiled));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
