import { describe, expect, it } from 'vitest';
import { averageBits } from './average-bits';
import { allocateBits, budgetRange, planBudget, type BudgetRequest } from './budget';
import { predict, prepareProfile } from './planner';
import { syntheticProfile } from './testing';

const CHOICES = [2, 3, 4, 8];

function request(profile: ReturnType<typeof prepareProfile>, partial: Partial<BudgetRequest>): BudgetRequest {
  return { profile, names: profile.names, choices: CHOICES, block: 64, scaleBits: 32, method: 'loftq', rank: 4, budget: 3, ...partial };
}

describe('planBudget', () => {
  it('allocates bits within the budget, giving bits where they lower the error most', () => {
    const p = prepareProfile(syntheticProfile(6));
    const names = p.names;
    const floor = averageBits(p.shapes, names.map(() => 2), 64, 32, 4);
    const plan = planBudget(request(p, { budget: floor + 1 }));
    if (!plan.ok) throw new Error(plan.reason);
    expect(plan.average).toBeLessThanOrEqual(floor + 1 + 1e-12);
    expect(averageBits(p.shapes, plan.bits, 64, 32, 4)).toBeCloseTo(plan.average, 12);
    const total = (b: number[]) => predict(p, names, b, 4, 'loftq').errors.reduce((s, e) => s + e, 0);
    expect(total(plan.bits)).toBeLessThan(total(names.map(() => 2)));
    expect(plan.bits.some((b) => b > 2)).toBe(true);
  });

  it('refuses a budget outside what the choices reach, naming the range', () => {
    const p = prepareProfile(syntheticProfile(6));
    const range = budgetRange(p.shapes, CHOICES, [4], 64, 32);
    expect(range.min).toBeCloseTo(averageBits(p.shapes, p.names.map(() => 2), 64, 32, 4), 12);
    expect(range.max).toBeCloseTo(averageBits(p.shapes, p.names.map(() => 8), 64, 32, 4), 12);
    for (const budget of [range.min - 0.01, range.max + 0.01, 100, NaN]) {
      const plan = planBudget(request(p, { budget }));
      expect(plan.ok).toBe(false);
      if (!plan.ok) {
        expect(plan.range).toEqual(range);
        expect(plan.reason).toContain(`${range.min.toFixed(2)} to ${range.max.toFixed(2)} bits per weight`);
      }
    }
    // The ends themselves are reachable: everything at the fewest / the most bits.
    const low = planBudget(request(p, { budget: range.min }));
    const high = planBudget(request(p, { budget: range.max }));
    expect(low.ok && low.bits.every((b) => b === 2)).toBe(true);
    expect(high.ok && high.bits.every((b) => b === 8)).toBe(true);
  });

  it("plans QLoRA by QLoRA's error (‖W − Q‖), which a rank does not change", () => {
    // Two matrices of equal size: one gains little from more bits under QLoRA but much under
    // LoftQ (its W − Q is nearly rank 1), so the two methods give the extra bits differently.
    const p = prepareProfile({
      ...syntheticProfile(2),
      matrices: [
        { name: 'model.layers.0.mlp.down_proj', shape: [64, 64], w_sq: 100, bits: { '2': { err_sq: 4, sv: [1.99, 0.01] }, '4': { err_sq: 1, sv: [0.01, 0.01] } } },
        { name: 'model.layers.1.mlp.down_proj', shape: [64, 64], w_sq: 100, bits: { '2': { err_sq: 3, sv: [0.5, 0.5] }, '4': { err_sq: 1, sv: [0.2, 0.2] } } },
      ],
    });
    const budget = averageBits(p.shapes, [4, 2], 64, 32, 1);
    const qlora = planBudget(request(p, { choices: [2, 4], method: 'qlora', rank: 1, budget }));
    const loftq = planBudget(request(p, { choices: [2, 4], method: 'loftq', rank: 1, budget }));
    expect(qlora.ok && qlora.bits).toEqual([4, 2]);
    expect(loftq.ok && loftq.bits).toEqual([2, 4]);
    expect(planBudget(request(p, { method: 'qlora', rank: [1, 2], budget })).ok).toBe(false);
  });

  it('chooses the rank too (LoftQ): the pair with the lowest total error within the budget', () => {
    const p = prepareProfile(syntheticProfile(6, 16));
    const names = p.names;
    const ranks = [1, 2, 4, 8, 16];
    const budget = averageBits(p.shapes, names.map(() => 3), 64, 32, 4);
    const chosen = planBudget(request(p, { rank: ranks, budget }));
    if (!chosen.ok) throw new Error(chosen.reason);
    expect(chosen.average).toBeLessThanOrEqual(budget + 1e-12);
    const total = (bits: number[], rank: number) => predict(p, names, bits, rank, 'loftq').errors.reduce((s, e) => s + e, 0);
    for (const r of ranks) {
      const bits = allocateBits(p, names, p.shapes, request(p, { budget }), r);
      if (bits) expect(total(chosen.bits, chosen.rank)).toBeLessThanOrEqual(total(bits, r) + 1e-12);
    }
  });

  it('refuses a LoftQ rank the profile cannot predict', () => {
    const p = prepareProfile(syntheticProfile(3, 8));
    const plan = planBudget(request(p, { rank: 16 }));
    expect(plan.ok).toBe(false);
    if (!plan.ok) expect(plan.reason).toMatch(/up to rank 8/);
  });
});
