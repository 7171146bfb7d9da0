import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { clipGradNorm, globalNorm } from './clip';

function refNorm(arrays: Float32Array[]): number {
  let s = 0;
  for (const a of arrays) for (const v of a) s += v * v;
  return Math.sqrt(s);
}

describe('clipGradNorm', () => {
  it('returns the pre-clip global norm (float64) and scales to maxNorm', () => {
    const rng = new Rng(Date.now());
    const grads = [rng.fillNormal(new Float32Array(1000)) as Float32Array, rng.fillNormal(new Float32Array(17), 3) as Float32Array];
    const before = refNorm(grads);
    const r = clipGradNorm(grads, 1);
    expect(r.norm).toBe(before);
    expect(r.scale).toBeCloseTo(1 / (before + 1e-6), 12);
    // float32 rounding of each scaled element: relative 6e-8 per element.
    expect(Math.abs(globalNorm(grads) - 1)).toBeLessThan(1e-6);
  });

  it('leaves gradients under the limit alone, and clips nothing with maxNorm 0', () => {
    const g = [new Float32Array([3, 4])];
    expect(clipGradNorm(g, 10)).toEqual({ norm: 5, scale: 1 });
    expect(clipGradNorm(g, 0)).toEqual({ norm: 5, scale: 1 });
    expect([...g[0]]).toEqual([3, 4]);
    expect(clipGradNorm(g, 2.5).scale).toBeCloseTo(0.5, 6);
    expect(Array.from(g[0], (v) => Math.round(v * 1e5) / 1e5)).toEqual([1.5, 2]);
  });

  it('reports a non-finite norm without touching the gradients', () => {
    const g = [new Float32Array([1, NaN]), new Float32Array([2])];
    const r = clipGradNorm(g, 1);
    expect(r.norm).toBeNaN();
    expect(g[1][0]).toBe(2);
    expect(clipGradNorm([new Float32Array([Infinity])], 1).norm).toBe(Infinity);
  });

  it('does not overflow where float32 squares would', () => {
    expect(Math.abs(globalNorm([new Float32Array([3e30, 4e30])]) / 5e30 - 1)).toBeLessThan(1e-6);
  });
});
