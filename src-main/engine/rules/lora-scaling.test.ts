import { describe, expect, it } from 'vitest';
import { alphaForRank, loraScaling } from './lora-scaling';

describe('alpha for a rank the planner chose', () => {
  it('keeps s = α/r (or α/√r with rsLoRA), or sets α = r, as the user chose', () => {
    const current = { alpha: 16, rank: 16, rslora: false };
    expect(alphaForRank('keep-scaling', 4, current)).toBe(4);
    expect(alphaForRank('keep-scaling', 64, { ...current, alpha: 32 })).toBe(128);
    expect(loraScaling(alphaForRank('keep-scaling', 8, { alpha: 32, rank: 16, rslora: false }), 8, false)).toBe(2);
    const rs = { alpha: 16, rank: 16, rslora: true }; // s = 4
    expect(loraScaling(alphaForRank('keep-scaling', 64, rs), 64, true)).toBeCloseTo(4, 12);
    expect(alphaForRank('alpha-equals-rank', 8, current)).toBe(8);
  });
});
