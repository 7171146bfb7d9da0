// Forward (perplexity) throughput and memory of a model or a run on the GPU, and the numbers
// the Hugging Face cross-check compares (scripts/device/hf_forward.py): token ids, the first
// sequence's logits and every position's NLL, in fp32 and bf16.
//   node dist/bench-forward-gpu.cjs --model DIR | --run DIR [--weights q|q+lora]
//        [--seq 2048] [--batch 4] [--repeat 3] [--precision bf16|fp32] [--seed 1]
//        [--text FILE] [--dump DIR] [--attention fused|blocked] [--profile] [--json]
// --text tokenizes a text with the model's tokenizer instead of drawing random ids; --dump
// writes DIR/ids.bin, DIR/logits-<precision>.bin ([seq, vocab] float32 of sequence 0) and
// DIR/nll-<precision>.bin. Timing: one warm-up pass, then the median of --repeat passes;
// --profile adds one pass timed kernel by kernel (bench/op-profile.ts, to stderr and the JSON).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceModel } from '../src-main/engine/model/device-model';
import { attachAdapter, loadModelWeights, loadQuantizedWeights, type WeightSet } from '../src-main/engine/model/weights';
import { CudaDevice } from '../src-main/engine/tensor/cuda-device';
import type { ComputePrecision } from '../src-main/engine/tensor/nn';
import { RUN_FILES } from '../src-main/engine/runs/run-dir';
import { Rng } from '../src-main/engine/util/random';
import { openTextDataset, readTokens } from '../src-main/engine/text/datasets';
import { loadTokenizer } from '../src-main/engine/text/tokenizer';
import { median } from './bench-util';
import { formatProfile, profileOps } from './op-profile';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const num = (name: string, fallback: number) => Number(value(name) ?? fallback);
  const seq = num('--seq', 2048);
  const batch = num('--batch', 4);
  const repeat = num('--repeat', 3);
  const precisions = (value('--precision') ?? 'bf16').split(',') as ComputePrecision[];
  const dump = value('--dump');
  const modelDir = value('--model');
  const runDir = value('--run');
  const weightsKind = value('--weights') ?? (runDir ? 'q+lora' : 'fp');

  const t0 = performance.now();
  let weights: WeightSet;
  if (runDir) {
    weights = await loadQuantizedWeights(runDir);
    if (weightsKind === 'q+lora') weights = await attachAdapter(weights, join(runDir, RUN_FILES.adapter));
  } else if (modelDir) weights = await loadModelWeights(modelDir);
  else throw new Error('--model DIR or --run DIR');
  const hostLoadSeconds = (performance.now() - t0) / 1000;
  const V = weights.config.vocabSize;

  const n = batch * seq;
  const textFile = value('--text');
  async function tokenIds(): Promise<Int32Array> {
    if (textFile) {
      // The model's own tokenizer on a real text: the first batch·seq tokens.
      const dir = runDir ? join(runDir, RUN_FILES.backbone) : modelDir!;
      const all = await readTokens(openTextDataset(textFile), await loadTokenizer(dir), { separator: 'eos' });
      if (all.length < n) throw new Error(`${textFile} has ${all.length} tokens, ${n} needed`);
      return all.slice(0, n);
    }
    const rng = new Rng(num('--seed', 1));
    return Int32Array.from({ length: n }, () => rng.nextUint32() % V);
  }
  const ids = await tokenIds();
  // Position t predicts token t + 1 of its own sequence; the last position of each predicts 0.
  const targets = new Int32Array(n);
  for (let b = 0; b < batch; b++) targets.set(ids.subarray(b * seq + 1, (b + 1) * seq), b * seq);
  if (dump) {
    mkdirSync(dump, { recursive: true });
    writeFileSync(join(dump, 'ids.bin'), Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength));
  }

  const device = CudaDevice.open();
  const results: Record<string, unknown>[] = [];
  for (const precision of precisions) {
    const attention = value('--attention') as 'fused' | 'blocked' | undefined;
    const profile = args.includes('--profile') ? profileOps(device.neuralOps(precision, { attention })) : null;
    const nn = profile?.ops ?? device.neuralOps(precision, { attention });
    nn.resetPeak();
    const t1 = performance.now();
    const model = DeviceModel.load(weights, nn, device.info.name);
    await model.nll(ids.subarray(0, seq), targets.subarray(0, seq), undefined, 1); // warm-up: cuBLAS plans, pools
    const uploadAndWarmSeconds = (performance.now() - t1) / 1000;
    const times: number[] = [];
    let nll: Float32Array = new Float32Array(0);
    for (let i = 0; i < repeat; i++) {
      const t = performance.now();
      nll = await model.nll(ids, targets, undefined, batch);
      times.push((performance.now() - t) / 1000);
    }
    let sum = 0;
    for (let b = 0; b < batch; b++) for (let t = 0; t < seq - 1; t++) sum += nll[b * seq + t];
    const ppl = Math.exp(sum / (batch * (seq - 1)));
    if (dump) {
      writeFileSync(join(dump, `nll-${precision}.bin`), Buffer.from(nll.buffer));
      const logits = await model.logits(ids.subarray(0, seq));
      writeFileSync(join(dump, `logits-${precision}.bin`), Buffer.from(logits.buffer));
    }
    const memory = model.memoryUsage();
    let profiled = null;
    if (profile) {
      profile.start();
      await model.nll(ids, targets, undefined, batch);
      profiled = profile.stop();
      console.error(`${precision} batch ${batch} x ${seq}:\n${formatProfile(profiled)}`);
    }
    const seconds = median(times);
    results.push({
      precision,
      attention: attention ?? 'default',
      weights: weightsKind,
      batch,
      seq,
      tokens_per_s: n / seconds,
      seconds,
      times,
      ppl,
      peak_bytes: memory.peak,
      weight_bytes: model.weightBytes,
      upload_and_warm_s: uploadAndWarmSeconds,
      host_load_s: hostLoadSeconds,
      ...(profiled ? { profile: profiled } : {}),
    });
    await model.dispose();
  }
  await device.dispose();
  const out = { model: runDir ?? modelDir, device: device.info.name, results };
  if (args.includes('--json')) console.log(JSON.stringify(out));
  else for (const r of results) console.log(`${r.weights} ${r.precision}: ${Math.round(r.tokens_per_s as number)} tokens/s, peak ${((r.peak_bytes as number) / 2 ** 30).toFixed(2)} GiB (weights ${((r.weight_bytes as number) / 2 ** 30).toFixed(2)} GiB), ppl ${(r.ppl as number).toFixed(3)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
