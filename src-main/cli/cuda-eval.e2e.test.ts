// `loftq eval --device cuda` end to end (GPU machine only; skipped elsewhere with the reason):
// a LoftQ run of the demo model, evaluated on its held-out text on the CPU and on the GPU.
// Full precision, Q and Q + adapter: the GPU's fp32 mode equals the CPU within 1e-4 relative,
// its bf16 mode within 0.5%; the result and the run's metrics say where each ran.
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loftq } from '../test-support/cli';
import { cudaAvailability, requireCuda } from '../test-support/devices';
import { makeTempDir } from '../test-support/tiny-model';

const cuda = cudaAvailability();
const run = cuda.ok || requireCuda();
const title = cuda.ok ? 'loftq eval --device cuda' : `loftq eval --device cuda: skipped, ${cuda.reason}`;
const DEMO = resolve('assets/demo-model');
const TEXT = resolve('assets/demo-data/eval.txt');

interface Entry {
  weights: string;
  ppl: number;
  tokens: number;
  where: string;
  device_memory_peak?: number;
}

(run ? describe : describe.skip)(title, () => {
  let tmp: string;
  let runDir: string;
  beforeAll(async () => {
    tmp = await makeTempDir('loftq-cuda-eval-');
    runDir = join(tmp, 'run');
    const r = loftq('quantize', DEMO, '--out', runDir, '--bits', '2', '--rank', '8', '--device', 'cuda', '--json');
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const evaluate = (...extra: string[]) => {
    const r = loftq('eval', runDir, '--data', TEXT, '--seq-len', '128', '--stride', '64', '--json', ...extra);
    expect(r.code, r.stderr).toBe(0);
    return r.events.at(-1) as unknown as { results: Entry[]; batch: number; device: Record<string, unknown> };
  };

  it('fp32 on the GPU equals the CPU within 1e-4, bf16 within 0.5%, for fp, Q and Q + adapter', () => {
    const cpu = evaluate('--device', 'cpu');
    const fp32 = evaluate('--device', 'cuda', '--precision', 'fp32', '--batch', '3');
    const bf16 = evaluate('--device', 'cuda');
    expect(cpu.results.map((e) => e.weights)).toEqual(['fp', 'q', 'q+lora']);
    expect(fp32.device).toMatchObject({ kind: 'cuda', choice: 'cuda' });
    expect(fp32.batch).toBe(3);
    expect(bf16.batch).toBe(64); // 8192 tokens' worth of 128-token windows
    cpu.results.forEach((c, i) => {
      const [f, b] = [fp32.results[i], bf16.results[i]];
      expect(c.where).toBe('CPU');
      expect(f.where).toMatch(/\(fp32\)$/);
      expect(b.where).toMatch(/\(bf16\)$/);
      expect(f.tokens).toBe(c.tokens);
      expect(Math.abs(f.ppl / c.ppl - 1), `${c.weights} fp32`).toBeLessThan(1e-4);
      expect(Math.abs(b.ppl / c.ppl - 1), `${c.weights} bf16`).toBeLessThan(5e-3);
      expect(b.device_memory_peak).toBeGreaterThan(0);
    });
    // The adapter still helps on the GPU, as on the CPU.
    expect(bf16.results[2].ppl).toBeLessThan(bf16.results[1].ppl);
    const metrics = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.split === 'eval').map((m) => m.where)).toContain(bf16.results[0].where);
  });

  it('progress events carry tokens/s and the GPU memory in use', () => {
    const r = loftq('eval', runDir, '--data', TEXT, '--seq-len', '128', '--json', '--device', 'cuda', '--batch', '4');
    expect(r.code, r.stderr).toBe(0);
    const events = r.events.filter((e) => e.type === 'eval' && Number(e.done_tokens) > 0) as Array<{ tokens_per_s: number; device_memory: { in_use: number; peak: number } }>;
    expect(events.length).toBeGreaterThan(2);
    for (const e of events) {
      expect(e.tokens_per_s).toBeGreaterThan(0);
      expect(e.device_memory.in_use).toBeGreaterThan(0);
      expect(e.device_memory.peak).toBeGreaterThanOrEqual(e.device_memory.in_use);
    }
  });
});
