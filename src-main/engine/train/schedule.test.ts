import { describe, expect, it } from 'vitest';
import { learningRate, type LrSchedule } from './schedule';

const base: LrSchedule = { peak: 1e-3, floor: 1e-4, warmup: 10, total: 110, decay: 'cosine' };

describe('learningRate', () => {
  it('warms up linearly to the peak at step `warmup`', () => {
    expect(learningRate(1, base)).toBeCloseTo(1e-4, 15);
    expect(learningRate(5, base)).toBeCloseTo(5e-4, 15);
    expect(learningRate(10, base)).toBe(1e-3);
  });

  it('decays by a cosine to the floor at the last step, and stays there', () => {
    expect(learningRate(60, base)).toBeCloseTo((1e-3 + 1e-4) / 2, 15);
    // progress p = 1/4: floor + (peak − floor)·(1 + cos(π/4))/2
    expect(learningRate(35, base)).toBeCloseTo(1e-4 + 9e-4 * (1 + Math.SQRT1_2) / 2, 15);
    expect(learningRate(110, base)).toBe(1e-4);
    expect(learningRate(500, base)).toBe(1e-4);
    for (let s = 11; s <= 110; s++) expect(learningRate(s, base)).toBeLessThanOrEqual(learningRate(s - 1, base));
  });

  it('decays linearly', () => {
    const s: LrSchedule = { ...base, decay: 'linear' };
    expect(learningRate(35, s)).toBeCloseTo(1e-4 + 9e-4 * 0.75, 15);
    expect(learningRate(60, s)).toBeCloseTo(5.5e-4, 15);
    expect(learningRate(110, s)).toBe(1e-4);
  });

  it('holds the peak with constant, and handles no warm-up or warm-up over the whole run', () => {
    expect(learningRate(100, { ...base, decay: 'constant' })).toBe(1e-3);
    const noWarm: LrSchedule = { ...base, warmup: 0, total: 100 };
    expect(learningRate(1, noWarm)).toBeCloseTo(1e-4 + 9e-4 * (1 + Math.cos(Math.PI / 100)) / 2, 15);
    expect(learningRate(10, { ...base, warmup: 10, total: 10 })).toBe(1e-3);
  });

  it('is a pure function of the step', () => {
    const a = Array.from({ length: 120 }, (_, i) => learningRate(i + 1, base));
    const b = Array.from({ length: 120 }, (_, i) => learningRate(i + 1, base));
    expect(a).toEqual(b);
    expect(() => learningRate(0, base)).toThrow(/step must be an integer ≥ 1/);
  });
});
