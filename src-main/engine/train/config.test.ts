import { describe, expect, it } from 'vitest';
import { UserError } from '../errors';
import { resolveTrainConfig, TRAIN_DEFAULTS } from './config';

const DATA = { path: '/d.txt', tokens: 10, sha256: '00' };

describe('resolveTrainConfig', () => {
  it('fills the defaults', () => {
    const c = resolveTrainConfig({ data: DATA, lr: 1e-3, evalEvery: undefined });
    expect(c.lr).toBe(1e-3);
    expect(c.evalEvery).toBe(TRAIN_DEFAULTS.evalEvery);
    expect(c.evalData).toBeNull();
    expect(c.noDecay).toEqual([]);
  });

  it('names the flag of an invalid value', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ lr: 0 }, /^--lr must be a positive number \(got 0\)/],
      [{ lr: NaN }, /^--lr must be a positive number/],
      [{ steps: 1.5 }, /^--steps must be an integer ≥ 1 \(got 1.5\)/],
      [{ batch: 0 }, /^--batch must be an integer ≥ 1/],
      [{ seqLen: -2 }, /^--seq-len must be/],
      [{ minLr: 1 }, /^--min-lr must be between 0 and --lr/],
      [{ steps: 5, warmup: 6 }, /^--warmup \(6\) must not exceed --steps \(5\)/],
      [{ schedule: 'step' }, /^--schedule must be cosine, linear or constant/],
      [{ beta2: 1 }, /^--beta2 must be in \[0, 1\)/],
      [{ evalFraction: 1 }, /^--eval-fraction must be in \[0, 1\)/],
      [{ maxGradNorm: -1 }, /^--max-grad-norm must be a number ≥ 0/],
      [{ seed: 2 ** 32 }, /^--seed must be below 2\^32/],
    ];
    for (const [input, pattern] of bad) {
      let err: unknown = null;
      try {
        resolveTrainConfig({ data: DATA, ...input });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(input)).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(pattern);
    }
  });
});
