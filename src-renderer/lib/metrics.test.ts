import { describe, expect, it } from 'vitest';
import type { MetricRecord } from '../../src-main/api/contract';
import { latestPerplexity, perplexityCurve, smooth } from './metrics';

describe('latestPerplexity', () => {
  it('takes fp / q / q+lora from the latest loftq eval dataset, never mixing in training evaluations', () => {
    const m: MetricRecord[] = [
      { step: 0, split: 'eval', eval_ppl: 9, tokens: 5, weights: 'fp', data: '/a.txt', seq_len: 64, stride: 32 },
      { step: 0, split: 'eval', eval_ppl: 8, tokens: 5, weights: 'q', data: '/b.txt', seq_len: 64, stride: 32 },
      { step: 0, split: 'eval', eval_ppl: 7, tokens: 5, weights: 'fp', data: '/b.txt', seq_len: 64, stride: 32 },
      { step: 6, split: 'eval', eval_ppl: 1.5, tokens: 5, weights: 'q+lora' },
    ];
    expect(latestPerplexity(m)).toEqual({ q: 8, fp: 7 });
    expect(latestPerplexity(m.slice(3))).toEqual({ 'q+lora': 1.5 });
    expect(latestPerplexity([])).toEqual({});
  });
});

describe('perplexityCurve', () => {
  it('keeps one weight source, sorted by step, the last evaluation of a step winning', () => {
    const m: MetricRecord[] = [
      { step: 10, split: 'eval', eval_ppl: 30, tokens: 5, weights: 'q+lora' },
      { step: 0, split: 'eval', eval_ppl: 50, tokens: 5, weights: 'q+lora' },
      { step: 0, split: 'eval', eval_ppl: 70, tokens: 5, weights: 'q' },
      { step: 5, loss: 3, lr: 1e-4, grad_norm: 1, tokens_per_s: 100, time: 1 },
      { step: 10, split: 'eval', eval_ppl: 29, tokens: 5, weights: 'q+lora' },
    ];
    expect(perplexityCurve(m, 'q+lora')).toEqual([{ step: 0, ppl: 50 }, { step: 10, ppl: 29 }]);
    // With a loftq eval beside them, the training loop's held-out evaluations still make the curve.
    const withEval: MetricRecord[] = [...m, { step: 0, split: 'eval', eval_ppl: 99, tokens: 5, weights: 'q+lora', data: '/x.txt', seq_len: 64, stride: 32 }];
    expect(perplexityCurve(withEval, 'q+lora')).toEqual([{ step: 0, ppl: 50 }, { step: 10, ppl: 29 }]);
    expect(perplexityCurve(m, 'q')).toEqual([{ step: 0, ppl: 70 }]);
    expect(perplexityCurve(m, 'fp')).toEqual([]);
  });

  it('smooth is the debiased exponential average (0 leaves values as they are)', () => {
    expect(smooth([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const s = smooth([1, 3], 0.5);
    expect(s[0]).toBeCloseTo(1, 12);
    // avg = 0.5·(0.5·1) + 0.5·3 = 1.75, weight = 0.75 → 7/3
    expect(s[1]).toBeCloseTo(7 / 3, 12);
  });
});
