// `loftq train --device cuda` end to end (GPU machine only; skipped elsewhere with the
// reason): a generated model quantized with LoftQ at 2 bits, fine-tuned on the GPU. In fp32
// every step's loss follows the CPU training's; in bf16 the loss decreases; run.json records
// the device; a run cancelled with SIGINT and resumed ends with the same adapter bytes as an
// uninterrupted GPU run.
import { cpSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loftq, loftqAsync } from '../test-support/cli';
import { cudaAvailability, requireCuda } from '../test-support/devices';
import { makeTempDir } from '../test-support/tiny-model';
import { writeTrainFixture } from '../test-support/train-fixture';

const cuda = cudaAvailability();
const run = cuda.ok || requireCuda();
const title = cuda.ok ? 'loftq train --device cuda' : `loftq train --device cuda: skipped, ${cuda.reason}`;
const ARGS = ['--steps', '12', '--lr', '0.01', '--batch', '2', '--seq-len', '24', '--eval-every', '4', '--warmup', '2', '--json'];

(run ? describe : describe.skip)(title, () => {
  let tmp: string;
  let base: string;
  let data: string;
  const copyRun = (name: string) => {
    const dir = join(tmp, name);
    cpSync(base, dir, { recursive: true });
    return dir;
  };
  const losses = (r: ReturnType<typeof loftq>) => r.events.filter((e) => e.type === 'train' && typeof e.loss === 'number').map((e) => e.loss as number);

  beforeAll(async () => {
    tmp = await makeTempDir('loftq-cuda-train-');
    ({ base, data } = await writeTrainFixture(tmp, { hidden: 64, intermediate: 96, quantizeArgs: ['--device', 'cpu'] }));
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('fp32 on the GPU follows the CPU step by step; bf16 lowers the loss; run.json says where', () => {
    const cpu = loftq('train', copyRun('cpu'), '--data', data, ...ARGS, '--device', 'cpu');
    const gpuDir = copyRun('gpu-fp32');
    const gpu = loftq('train', gpuDir, '--data', data, ...ARGS, '--device', 'cuda', '--precision', 'fp32');
    expect(cpu.code, cpu.stderr).toBe(0);
    expect(gpu.code, gpu.stderr).toBe(0);
    const [lc, lg] = [losses(cpu), losses(gpu)];
    expect(lg).toHaveLength(12);
    // Same data, same initial adapter, float32 both: only summation orders differ.
    lg.forEach((l, i) => expect(Math.abs(l / lc[i] - 1), `step ${i + 1}`).toBeLessThan(1e-3));
    const record = JSON.parse(readFileSync(join(gpuDir, 'run.json'), 'utf8'));
    expect(record.training.device).toMatchObject({ kind: 'cuda', choice: 'cuda' });
    expect(record.training.device.where).toMatch(/\(fp32\)$/);
    const events = gpu.events.filter((e) => e.type === 'train' && typeof e.loss === 'number') as Array<{ device_memory: { in_use: number } }>;
    expect(events.every((e) => e.device_memory.in_use > 0)).toBe(true);

    const bf16 = loftq('train', copyRun('gpu-bf16'), '--data', data, ...ARGS, '--device', 'cuda');
    expect(bf16.code, bf16.stderr).toBe(0);
    const lb = losses(bf16);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(lb.slice(-3))).toBeLessThan(mean(lb.slice(0, 3)));
  });

  it('cancel with SIGINT on the GPU, then resume: the same adapter bytes as the uninterrupted GPU run', async () => {
    const full = copyRun('full');
    expect(loftq('train', full, '--data', data, ...ARGS, '--device', 'cuda').code).toBe(0);
    const resumed = copyRun('resumed');
    let sent = false;
    const r = await loftqAsync(['train', resumed, '--data', data, ...ARGS, '--device', 'cuda'], (e, child) => {
      if (e.type === 'train' && e.step === 5 && typeof e.loss === 'number' && !sent) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(sent).toBe(true);
    expect(r.code, r.stderr).toBe(130);
    const again = loftq('train', resumed, '--data', data, ...ARGS, '--device', 'cuda');
    expect(again.code, again.stderr).toBe(0);
    const a = readFileSync(join(full, 'adapter', 'adapter_model.safetensors'));
    const b = readFileSync(join(resumed, 'adapter', 'adapter_model.safetensors'));
    expect(b.equals(a)).toBe(true);
  });
});
