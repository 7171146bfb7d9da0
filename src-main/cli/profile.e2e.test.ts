// `loftq profile`: the planner's profile, and its one-step prediction checked against real
// one-step LoftQ runs (exact and randomized SVD) at several bits and ranks: within 1% per matrix.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorAt, predict, prepareProfile, type ModelProfile } from '../engine/rules/planner';
import { loftq } from '../test-support/cli';
import { makeTempDir, writeTinyModel } from '../test-support/tiny-model';
import { byteLevelBpe, writeTokenizer } from '../test-support/tokenizer-fixtures';

let tmp: string;
let model: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-profile-');
  model = join(tmp, 'model');
  await writeTinyModel(model, { layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 96, vocab: 272, seed: 13, std: 0.1 });
  await writeTokenizer(model, byteLevelBpe());
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loftq profile', () => {
  it('predicts the error of one LoftQ step for any bits and rank within 1% of a run', () => {
    const file = join(tmp, 'profile.json');
    const p = loftq('profile', model, '--out', file, '--max-rank', '24', '--json');
    expect(p.code, p.stderr).toBe(0);
    const profile = JSON.parse(readFileSync(file, 'utf8')) as ModelProfile;
    expect(profile).toMatchObject({ format: 'loftq-profile/1', quant: 'nf', block: 64, max_rank: 24 });
    expect(profile.matrices).toHaveLength(14);
    expect(Object.keys(profile.matrices[0].bits)).toEqual(['2', '3', '4', '8']);
    for (const [bits, rank, svd] of [
      [2, 8, 'exact'],
      [3, 16, 'exact'],
      [4, 4, 'exact'],
      [2, 8, 'randomized'],
      [3, 16, 'randomized'],
    ] as const) {
      const run = join(tmp, `run-${bits}-${rank}-${svd}`);
      const q = loftq('quantize', model, '--out', run, '--bits', String(bits), '--rank', String(rank), '--iters', '1', '--svd', svd);
      expect(q.code, q.stderr).toBe(0);
      const layers = JSON.parse(readFileSync(join(run, 'layers.json'), 'utf8')) as Array<{ name: string; err_q: number; err_init: number }>;
      let worst = 0;
      let predictedSum = 0;
      let measuredSum = 0;
      const prepared = prepareProfile(profile);
      for (const l of layers) {
        const i = prepared.index.get(l.name)!;
        // QLoRA's prediction is Q alone: the same quantizer, the same error.
        expect(Math.abs(errorAt(prepared, i, bits, rank, 'qlora') / l.err_q - 1)).toBeLessThan(1e-9);
        const predicted = errorAt(prepared, i, bits, rank, 'loftq');
        worst = Math.max(worst, Math.abs(predicted / l.err_init - 1));
        predictedSum += predicted;
        measuredSum += l.err_init;
      }
      const meanDeviation = Math.abs(predictedSum / measuredSum - 1);
      console.log(`${bits}-bit r=${rank} ${svd}: mean |predicted/measured − 1| = ${meanDeviation.toExponential(2)}, worst matrix ${worst.toExponential(2)}`);
      expect(meanDeviation).toBeLessThan(0.01);
      // The exact SVD is the best rank r, as the prediction assumes; the randomized one (8 passes
      // of subspace iteration for T = 1) comes within 2% on these random matrices, whose flat
      // spectra are its worst case (0.5% on the demo model's trained ones).
      expect(worst).toBeLessThan(svd === 'exact' ? 0.01 : 0.02);
    }
  }, 120_000);

  it('prints QLoRA\'s prediction (‖W − Q‖) apart from LoftQ\'s one step', () => {
    const p = loftq('profile', model, '--out', join(tmp, 'table.json'), '--max-rank', '16');
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/bits\s+QLoRA\s+LoftQ r=8\s+LoftQ r=16/);
    const row = p.stdout.split('\n').find((l) => l.startsWith('2-bit'))!.trim().split(/\s+/).slice(1).map(Number);
    expect(row[0]).toBeGreaterThan(row[1]);
    expect(row[1]).toBeGreaterThan(row[2]);
  });

  it('plans a run for a budget from the profile (quantize --budget): within the budget, and as predicted', () => {
    const file = join(tmp, 'plan.json');
    expect(loftq('profile', model, '--out', file, '--max-rank', '16').code).toBe(0);
    const profile = prepareProfile(JSON.parse(readFileSync(file, 'utf8')) as ModelProfile);
    for (const method of ['qlora', 'loftq'] as const) {
      const run = join(tmp, `budget-${method}`);
      const q = loftq('quantize', model, '--out', run, '--method', method, '--budget', '8', '--profile', file, '--rank', '4', '--iters', '1', '--svd', 'exact');
      expect(q.code, q.stderr).toBe(0);
      expect(q.stderr).toMatch(/planned [\d.]+ bits per weight .* for a budget of 8: --bits \d/);
      const record = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
      const layers = JSON.parse(readFileSync(join(run, 'layers.json'), 'utf8')) as Array<{ name: string; bits: number; err_init: number; shape: [number, number] }>;
      // The run's codes, scales and adapter fit the budget.
      const adapterBits = layers.reduce((s, l) => s + 4 * (l.shape[0] + l.shape[1]) * 32, 0) / layers.reduce((s, l) => s + l.shape[0] * l.shape[1], 0);
      expect(record.summary.avg_bits + adapterBits).toBeLessThanOrEqual(8 + 1e-9);
      expect(new Set(layers.map((l) => l.bits)).size).toBeGreaterThan(1);
      // The measured error is what the planner predicted for this method (QLoRA exactly; LoftQ T = 1, exact SVD: within 1%).
      const predicted = predict(profile, layers.map((l) => l.name), layers.map((l) => l.bits), 4, method).mean;
      const measured = layers.reduce((s, l) => s + l.err_init, 0) / layers.length;
      expect(Math.abs(measured / predicted - 1)).toBeLessThan(method === 'qlora' ? 1e-9 : 0.01);
    }
    // The planner chooses the rank too; alpha follows it (α = r), or keeps s with --scaling.
    const auto = join(tmp, 'budget-auto');
    const a = loftq('quantize', model, '--out', auto, '--budget', '6', '--profile', file, '--rank', 'auto', '--scaling', '2', '--iters', '1');
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toMatch(/rank \d+ \(chosen\), alpha \d+ \(s = α\/r kept at 2\)/);
    const config = JSON.parse(readFileSync(join(auto, 'run.json'), 'utf8')).config;
    expect(config.alpha).toBe(2 * config.rank);
  }, 120_000);

  it('refuses a budget outside what the choices reach, naming the range, before anything is written', () => {
    const file = join(tmp, 'range.json');
    expect(loftq('profile', model, '--out', file, '--max-rank', '8').code).toBe(0);
    const lastLine = (r: { stderr: string }) => r.stderr.trim().split('\n').at(-1);
    for (const budget of ['100', '1']) {
      const run = join(tmp, `never-${budget}`);
      const r = loftq('quantize', model, '--out', run, '--budget', budget, '--profile', file, '--rank', '4');
      expect(r.code).toBe(1);
      expect(lastLine(r)).toMatch(new RegExp(`^loftq: --budget: a budget of ${budget} bits per weight is outside what these choices reach: \\d\\.\\d\\d to \\d+\\.\\d\\d bits per weight$`));
      expect(existsSync(run)).toBe(false);
    }
    // QLoRA's error does not depend on the rank: nothing to choose it by.
    expect(lastLine(loftq('quantize', model, '--out', join(tmp, 'never-q'), '--method', 'qlora', '--budget', '4', '--profile', file, '--rank', 'auto'))).toMatch(/does not depend on the rank/);
    // Usage: --budget without a profile, with --bits-map, --alpha with --rank auto.
    expect(loftq('quantize', model, '--out', join(tmp, 'never-u'), '--budget', '4').code).toBe(2);
    expect(loftq('quantize', model, '--out', join(tmp, 'never-u'), '--budget', '4', '--profile', file, '--bits-map', 'attn=8').code).toBe(2);
    expect(loftq('quantize', model, '--out', join(tmp, 'never-u'), '--budget', '4', '--profile', file, '--rank', 'auto', '--alpha', '8').code).toBe(2);
  });

  it('refuses a bad rank, an existing file without --force, and a quantizer it cannot run', () => {
    const file = join(tmp, 'exists.json');
    writeFileSync(file, '{}');
    const lastLine = (r: { stderr: string }) => r.stderr.trim().split('\n').at(-1);
    expect(lastLine(loftq('profile', model, '--out', join(tmp, 'x.json'), '--max-rank', '0'))).toMatch(/--max-rank must be a whole number from 1 to 512/);
    expect(lastLine(loftq('profile', model, '--out', file))).toMatch(/already exists \(use --force/);
    expect(readFileSync(file, 'utf8')).toBe('{}');
    expect(lastLine(loftq('profile', model, '--out', join(tmp, 'y.json'), '--quant', 'q4_0', '--block', '64'))).toMatch(/blocks of 32/);
  });

  it('--force replaces only a profile it wrote: never a model file, other JSON or a folder (issue 23)', () => {
    const lastLine = (r: { stderr: string }) => r.stderr.trim().split('\n').at(-1);
    const weights = join(model, 'model.safetensors');
    const before = readFileSync(weights);
    const refused = loftq('profile', model, '--out', weights, '--max-rank', '2', '--force');
    expect(refused.code).toBe(1);
    expect(lastLine(refused)).toMatch(/model\.safetensors is not a profile made by loftq .*refusing to replace it/);
    expect(readFileSync(weights).equals(before)).toBe(true);
    const other = join(tmp, 'other.json');
    writeFileSync(other, '{"format": "something-else"}');
    expect(lastLine(loftq('profile', model, '--out', other, '--max-rank', '2', '--force'))).toMatch(/other\.json is not a profile made by loftq/);
    expect(readFileSync(other, 'utf8')).toBe('{"format": "something-else"}');
    expect(lastLine(loftq('profile', model, '--out', tmp, '--max-rank', '2', '--force'))).toMatch(/is a folder: refusing to replace it/);
    const mine = join(tmp, 'mine.json');
    expect(loftq('profile', model, '--out', mine, '--max-rank', '2').code).toBe(0);
    const again = loftq('profile', model, '--out', mine, '--max-rank', '3', '--force');
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(readFileSync(mine, 'utf8')) as ModelProfile).max_rank).toBe(3);
  });
});
