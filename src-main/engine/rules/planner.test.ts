import { describe, expect, it } from 'vitest';
import { errorAt, predict, prepareProfile } from './planner';
import { syntheticProfile } from './testing';

describe('planner prediction', () => {
  it('predicts one LoftQ step by Pythagoras: ‖W − Q‖² minus the energy of the first r singular values', () => {
    const p = prepareProfile(syntheticProfile(1));
    const errSq = 100 / 16;
    expect(errorAt(p, 0, 2, 0, 'loftq')).toBeCloseTo(Math.sqrt(errSq / 100), 12);
    // Σ_{i<3} errSq/2^(i+1) = errSq·(7/8): what is left is errSq/8.
    expect(errorAt(p, 0, 2, 3, 'loftq')).toBeCloseTo(Math.sqrt(errSq / 8 / 100), 12);
    expect(errorAt(p, 0, 2, 9, 'loftq')).toBeNaN(); // beyond the profile's rank
    expect(errorAt(p, 0, 5, 1, 'loftq')).toBeNaN(); // a width not profiled
  });

  it("predicts QLoRA as ‖W − Q‖ / ‖W‖ at any rank (B = 0), not LoftQ's step", () => {
    const p = prepareProfile(syntheticProfile(2));
    const errQ = Math.sqrt((100 / 16) * 1.1 / 100);
    for (const rank of [0, 1, 4, 8, 64]) expect(errorAt(p, 1, 2, rank, 'qlora')).toBeCloseTo(errQ, 12);
    expect(errorAt(p, 1, 2, 4, 'loftq')).toBeLessThan(errorAt(p, 1, 2, 4, 'qlora'));
    const names = p.names;
    const q = predict(p, names, [2, 2], 16, 'qlora');
    expect(q.mean).toBeCloseTo((Math.sqrt(6.25 / 100) + errQ) / 2, 12);
    expect(q.worst?.name).toBe(names[1]);
    // LoftQ at a rank past the profile is unknown; QLoRA's does not need it.
    expect(predict(p, names, [2, 2], 16, 'loftq').mean).toBeNaN();
  });

  it('predicts 224 matrices (a 7B model) for every edit in well under 50 ms', () => {
    const p = prepareProfile(syntheticProfile(224, 64));
    const names = p.names;
    const bits = names.map((_, k) => [2, 3, 4, 8][k % 4]);
    const t0 = performance.now();
    let r: ReturnType<typeof predict> | null = null;
    for (let rep = 0; rep < 100; rep++) r = predict(p, names, bits, 1 + (rep % 64), 'loftq');
    const perEdit = (performance.now() - t0) / 100;
    expect(r!.worst).not.toBeNull();
    expect(perEdit).toBeLessThan(5);
  });
});
