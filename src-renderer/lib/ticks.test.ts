import { describe, expect, it } from 'vitest';
import { integerTicks, niceAxis } from './ticks';

describe('niceAxis', () => {
  it('steps by 1, 2, 2.5 or 5 × 10^k and covers the data', () => {
    const a = niceAxis(0.05299, 0.2113);
    expect(a.ticks).toEqual([0.05, 0.1, 0.15, 0.2, 0.25]);
    expect(a.domain).toEqual([0.05, 0.25]);
    expect(a.ticks.map(a.format)).toEqual(['0.05', '0.10', '0.15', '0.20', '0.25']);
  });

  it('labels every tick with the same, fewest decimals (never 0.05299)', () => {
    for (const [lo, hi] of [[0.4519, 0.5629], [1.2, 1.9], [0.0012, 0.0031], [3, 1180], [0.9, 1.1]]) {
      const a = niceAxis(lo, hi);
      expect(a.domain[0]).toBeLessThanOrEqual(lo);
      expect(a.domain[1]).toBeGreaterThanOrEqual(hi);
      const labels = a.ticks.map(a.format);
      expect(new Set(labels).size).toBe(labels.length);
      for (const l of labels) expect(l.replace(/^-?\d*\.?/, '').length).toBeLessThanOrEqual(4);
      expect(new Set(labels.map((l) => (l.split('.')[1] ?? '').length)).size).toBeLessThanOrEqual(2); // '0' has none
    }
  });

  it('keeps a floor (errors and singular values are never negative) and survives a flat range', () => {
    expect(niceAxis(0.001, 0.9, 5, 0).domain[0]).toBe(0);
    expect(niceAxis(0.3, 0.3).ticks.length).toBeGreaterThan(1);
  });
});

describe('integerTicks', () => {
  it('gives whole numbers 1, 2, 5 × 10^k apart, from the first index', () => {
    expect(integerTicks(1, 24)).toEqual([1, 5, 10, 15, 20]);
    expect(integerTicks(0, 5)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(integerTicks(1, 80).every((t) => Number.isInteger(t))).toBe(true);
  });
});
