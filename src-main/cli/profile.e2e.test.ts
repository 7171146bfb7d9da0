// `loftq profile`: the planner's profile, and its one-step prediction checked against real
// one-step LoftQ runs (exact and randomized SVD) at several bits and ranks: within 1% per matrix.
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { predictedError, type ModelProfile } from '../engine/plan/predict';
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
      for (const l of layers) {
        const m = profile.matrices.find((x) => x.name === l.name)!;
        // Rank 0 is Q alone: the same quantizer, the same error.
        expect(Math.abs(predictedError(m, bits, 0) / l.err_q - 1)).toBeLessThan(1e-9);
        worst = Math.max(worst, Math.abs(predictedError(m, bits, rank) / l.err_init - 1));
        predictedSum += predictedError(m, bits, rank);
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
