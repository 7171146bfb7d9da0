import { describe, expect, it } from 'vitest';
import type { ModelProfile } from '../../src-main/api/contract';
import { allocateBits, allocateBitsAndRank, averageBits, errorAt, predict, prepareProfile } from './planner';

/** A profile whose numbers are easy to check: W has ‖W‖² = 100; q at b bits leaves 100/4^b with σᵢ² = err_sq/2^(i+1). */
function profile(matrices: number, maxRank = 8): ModelProfile {
  return {
    format: 'loftq-profile/1',
    model: { path: '/m', identity: 'x' },
    quant: 'nf',
    block: 64,
    max_rank: maxRank,
    seconds: 0,
    matrices: Array.from({ length: matrices }, (_, k) => ({
      name: `model.layers.${k}.mlp.down_proj`,
      shape: [64, 64 * (k + 1)] as [number, number],
      w_sq: 100,
      bits: Object.fromEntries(
        [2, 3, 4, 8].map((b) => {
          const errSq = (100 / 4 ** b) * (1 + k / 10);
          return [String(b), { err_sq: errSq, sv: Array.from({ length: maxRank }, (_, i) => Math.sqrt(errSq / 2 ** (i + 1))) }];
        }),
      ),
    })),
  };
}

describe('planner', () => {
  it('predicts one LoftQ step by Pythagoras: ‖W − Q‖² minus the energy of the first r singular values', () => {
    const p = prepareProfile(profile(1));
    const errSq = 100 / 16;
    expect(errorAt(p, 0, 2, 0)).toBeCloseTo(Math.sqrt(errSq / 100), 12);
    // Σ_{i<3} errSq/2^(i+1) = errSq·(7/8): what is left is errSq/8.
    expect(errorAt(p, 0, 2, 3)).toBeCloseTo(Math.sqrt(errSq / 8 / 100), 12);
    expect(errorAt(p, 0, 2, 9)).toBeNaN(); // beyond the profile's rank
    expect(errorAt(p, 0, 5, 1)).toBeNaN(); // a width not profiled
  });

  it('predicts 224 matrices (a 7B model) for every edit in well under 50 ms', () => {
    const p = prepareProfile(profile(224, 64));
    const names = p.names;
    const bits = names.map((_, k) => [2, 3, 4, 8][k % 4]);
    const t0 = performance.now();
    let r: ReturnType<typeof predict> | null = null;
    for (let rep = 0; rep < 100; rep++) r = predict(p, names, bits, 1 + (rep % 64));
    const perEdit = (performance.now() - t0) / 100;
    expect(r!.worst).not.toBeNull();
    expect(perEdit).toBeLessThan(5);
  });

  it('allocates bits within the budget, giving bits where they lower the error most', () => {
    const p = prepareProfile(profile(6));
    const names = p.names;
    const rank = 4;
    const floor = averageBits(p.shapes, names.map(() => 2), 64, 32, rank, true);
    expect(allocateBits(p, names, [2, 3, 4, 8], rank, 64, 32, floor - 0.01)).toBeNull();
    const budget = floor + 1;
    const bits = allocateBits(p, names, [2, 3, 4, 8], rank, 64, 32, budget)!;
    expect(averageBits(p.shapes, bits, 64, 32, rank, true)).toBeLessThanOrEqual(budget + 1e-12);
    // The extra bits make the total error lower than spending nothing.
    const total = (b: number[]) => predict(p, names, b, rank).errors.reduce((s, e) => s + e, 0);
    expect(total(bits)).toBeLessThan(total(names.map(() => 2)));
    expect(bits.some((b) => b > 2)).toBe(true);
  });

  it('chooses the rank too: the pair of rank and bits with the lowest total error within the budget', () => {
    const p = prepareProfile(profile(6, 16));
    const names = p.names;
    const budget = averageBits(p.shapes, names.map(() => 3), 64, 32, 4, true);
    const chosen = allocateBitsAndRank(p, names, [2, 3, 4, 8], [1, 2, 4, 8, 16], 64, 32, budget)!;
    expect(averageBits(p.shapes, chosen.bits, 64, 32, chosen.rank, true)).toBeLessThanOrEqual(budget + 1e-12);
    const total = (bits: number[], rank: number) => predict(p, names, bits, rank).errors.reduce((s, e) => s + e, 0);
    // No single rank with its own best bits does better.
    for (const r of [1, 2, 4, 8, 16]) {
      const bits = allocateBits(p, names, [2, 3, 4, 8], r, 64, 32, budget);
      if (bits) expect(total(chosen.bits, chosen.rank)).toBeLessThanOrEqual(total(bits, r) + 1e-12);
    }
    expect(allocateBitsAndRank(p, names, [2, 3, 4, 8], [16], 64, 32, 1)).toBeNull();
  });
});
