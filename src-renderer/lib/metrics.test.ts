import { describe, expect, it } from 'vitest';
import type { MetricRecord } from '../../src-main/api/contract';
import { perplexityCurve, smooth } from './metrics';

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
