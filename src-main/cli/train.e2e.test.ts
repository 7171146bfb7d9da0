// `loftq train` end to end: a generated model and tokenizer, quantized with LoftQ at 2 bits,
// fine-tuned on generated text; the loss decreases, held-out perplexity is logged, a run
// cancelled with SIGINT and resumed ends with the same adapter bytes as an uninterrupted one,
// and the bad inputs are refused with one line.
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loftq, loftqAsync, type CliResult } from '../test-support/cli';
import { makeTempDir } from '../test-support/tiny-model';
import { writeTrainFixture } from '../test-support/train-fixture';

let tmp: string;
let base: string;
let data: string;

const ARGS = ['--steps', '12', '--lr', '0.01', '--batch', '2', '--seq-len', '24', '--eval-every', '4', '--warmup', '2', '--json'];

function copyRun(name: string): string {
  const dir = join(tmp, name);
  cpSync(base, dir, { recursive: true });
  return dir;
}

function metrics(run: string): Array<Record<string, number | string>> {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number | string>);
}

const lastLine = (r: CliResult) => r.stderr.trim().split('\n').at(-1);

beforeAll(async () => {
  tmp = await makeTempDir('loftq-train-');
  ({ base, data } = await writeTrainFixture(tmp, { hidden: 32, intermediate: 48 }));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loftq train', () => {
  let full: string;

  it('trains: the loss decreases, held-out perplexity is logged, run.json records it', () => {
    full = copyRun('full');
    const r = loftq('train', full, '--data', data, ...ARGS);
    expect(r.code, r.stderr).toBe(0);
    const trainEvents = r.events.filter((e) => e.type === 'train');
    expect(trainEvents.filter((e) => typeof e.loss === 'number').map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const result = r.events.at(-1)!;
    expect(result).toMatchObject({ type: 'result', status: 'done', step: 12, steps: 12, resumed_from: null });

    const m = metrics(full);
    const losses = m.filter((x) => typeof x.loss === 'number').map((x) => x.loss as number);
    expect(losses).toHaveLength(12);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-3))).toBeLessThan(mean(losses.slice(0, 3)));
    const evals = m.filter((x) => x.split === 'eval');
    expect(evals.map((x) => x.step)).toEqual([0, 4, 8, 12]);
    for (const e of evals) {
      expect(e.weights).toBe('q+lora');
      expect(Number.isFinite(e.eval_ppl)).toBe(true);
    }
    expect(evals.at(-1)!.eval_ppl).toBeLessThan(evals[0].eval_ppl as number);

    const record = JSON.parse(readFileSync(join(full, 'run.json'), 'utf8'));
    expect(record.kind).toBe('quantize');
    expect(record.status).toBe('done');
    expect(record.summary).toBeDefined();
    expect(record.training).toMatchObject({ status: 'done', step: 12, steps: 12 });
    expect(record.training.config).toMatchObject({ steps: 12, lr: 0.01, batch: 2, seqLen: 24 });
    // The trained adapter is a PEFT folder that differs from the initial one.
    const trained = readFileSync(join(full, 'adapter', 'adapter_model.safetensors'));
    expect(trained.equals(readFileSync(join(full, 'adapter-init', 'adapter_model.safetensors')))).toBe(false);
  });

  it('cancel with SIGINT, then resume: the same adapter bytes as the uninterrupted run', async () => {
    const run = copyRun('resumed');
    let sent = false;
    const r = await loftqAsync(['train', run, '--data', data, ...ARGS], (e, child) => {
      if (e.type === 'train' && e.step === 5 && typeof e.loss === 'number' && !sent) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(sent).toBe(true);
    expect(r.code, r.stderr).toBe(130);
    const cancelled = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(cancelled.status).toBe('done');
    expect(cancelled.training.status).toBe('cancelled');
    expect(cancelled.training.step).toBeGreaterThanOrEqual(5);
    expect(cancelled.training.step).toBeLessThan(12);

    const again = loftq('train', run, '--data', data, ...ARGS);
    expect(again.code, again.stderr).toBe(0);
    expect(again.events.at(-1)).toMatchObject({ status: 'done', step: 12, resumed_from: cancelled.training.step });
    const a = readFileSync(join(full, 'adapter', 'adapter_model.safetensors'));
    const b = readFileSync(join(run, 'adapter', 'adapter_model.safetensors'));
    expect(b.equals(a)).toBe(true);

    // Resuming with a changed setting is refused, naming the flag.
    const changed = loftq('train', run, '--data', data, ...ARGS.map((x) => (x === '0.01' ? '0.02' : x)));
    expect(changed.code).toBe(1);
    expect(lastLine(changed)).toMatch(/resume: --lr was 0\.01, now 0\.02/);
  });

  it('refuses a run that is not done, or has no adapter, with one clear line', () => {
    const failed = copyRun('failed');
    const rec = JSON.parse(readFileSync(join(failed, 'run.json'), 'utf8'));
    writeFileSync(join(failed, 'run.json'), JSON.stringify({ ...rec, status: 'failed' }));
    let r = loftq('train', failed, '--data', data, '--steps', '2');
    expect(r.code).toBe(1);
    expect(lastLine(r)).toMatch(/the run is failed; only a finished quantize run/);

    const bare = copyRun('no-adapter');
    rmSync(join(bare, 'adapter-init'), { recursive: true });
    r = loftq('train', bare, '--data', data, '--steps', '2');
    expect(r.code).toBe(1);
    expect(lastLine(r)).toMatch(/has no adapter to train/);

    r = loftq('train', join(tmp, 'nowhere'), '--data', data);
    expect(r.code).toBe(1);
    expect(lastLine(r)).toMatch(/not a run directory/);
    expect(loftq('train', failed).code).toBe(2);
  });
});
