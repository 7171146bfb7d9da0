import { describe, expect, it } from 'vitest';
import { Rng } from './random';

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.nextUint32())).not.toEqual(xs);
  });

  it('draws normals with mean 0 and variance 1 (within 5 standard errors)', () => {
    const rng = new Rng(Date.now());
    const n = 200_000;
    const x = rng.fillNormal(new Float64Array(n));
    let mean = 0;
    for (const v of x) mean += v;
    mean /= n;
    let variance = 0;
    for (const v of x) variance += (v - mean) ** 2;
    variance /= n - 1;
    expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n));
    // Var of the sample variance of a normal is 2/(n−1).
    expect(Math.abs(variance - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
  });
});
