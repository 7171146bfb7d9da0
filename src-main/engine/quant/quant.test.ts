import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { codebookLevels, normalQuantile } from './codebook';
import { BlockQuantizer } from './blockwise';
import { packCodes, unpackCodes, packedByteLength } from '../tensor/packing';

// bitsandbytes' NF4 table (its published float32 constants).
const BNB_NF4 = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
];

const seed = Date.now();

describe('codebooks', () => {
  it('normal quantile inverts known values', () => {
    // Φ⁻¹(0.975) = 1.959963984540054, Φ⁻¹(0.8413447460685429) = 1.
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 12);
    expect(normalQuantile(0.8413447460685429)).toBeCloseTo(1, 12);
  });

  it('NF4 equals the bitsandbytes table to float32 rounding', () => {
    const nf4 = codebookLevels('nf', 4);
    expect(nf4.length).toBe(16);
    // One float32 ulp near 1 is 6e-8: the table was computed in float32 by scipy → torch.
    nf4.forEach((v, i) => expect(Math.abs(v - BNB_NF4[i])).toBeLessThanOrEqual(1.2e-7));
  });

  it('NF2 is {-1, 0, 0.3379, 1} and NF3 has 8 sorted levels with an exact zero', () => {
    const nf2 = Array.from(codebookLevels('nf', 2));
    expect(nf2[0]).toBe(-1);
    expect(nf2[1]).toBe(0);
    expect(nf2[2]).toBeCloseTo(0.3379, 4);
    expect(nf2[3]).toBe(1);
    const nf3 = Array.from(codebookLevels('nf', 3));
    expect(nf3.length).toBe(8);
    expect(nf3).toContain(0);
    expect([...nf3].sort((a, b) => a - b)).toEqual(nf3);
  });

  it('uniform-k is linspace(-1, 1, 2^k) and rejects unsupported bits', () => {
    const u2 = Array.from(codebookLevels('uniform', 2));
    [-1, -1 / 3, 1 / 3, 1].forEach((v, i) => expect(u2[i]).toBeCloseTo(v, 7));
    expect(codebookLevels('uniform', 8).length).toBe(256);
    expect(() => codebookLevels('nf', 5)).toThrow(/unsupported bits 5/);
  });
});

/** Float64 reference quantizer: brute-force nearest level, ties to the lower one. */
function referenceQuantize(x: Float32Array, levels: Float32Array, blockSize: number) {
  const codes = new Uint8Array(x.length);
  const deq = new Float64Array(x.length);
  const ambiguous = new Uint8Array(x.length);
  for (let start = 0; start < x.length; start += blockSize) {
    const end = Math.min(x.length, start + blockSize);
    let amax = 0;
    for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(x[i]));
    for (let i = start; i < end; i++) {
      const t = amax > 0 ? x[i] * (1 / amax) : 0;
      let best = 0;
      for (let c = 1; c < levels.length; c++) if (Math.abs(t - levels[c]) < Math.abs(t - levels[best])) best = c;
      codes[i] = best;
      deq[i] = levels[best] * amax;
      for (let c = 0; c + 1 < levels.length; c++) {
        if (Math.abs(t - (levels[c] + levels[c + 1]) / 2) < 1e-12) ambiguous[i] = 1;
      }
    }
  }
  return { codes, deq, ambiguous };
}

describe('BlockQuantizer', () => {
  const configs = [
    ['nf', 2], ['nf', 3], ['nf', 4], ['uniform', 2], ['uniform', 3], ['uniform', 4], ['uniform', 8],
  ] as const;
  for (const [kind, bits] of configs) {
    it(`${kind}${bits} matches the float64 reference (seed ${seed})`, () => {
      const rng = new Rng(seed + bits);
      const blockSize = [64, 32, 100][bits % 3];
      const n = 64 * 37 + 13; // a ragged last block
      const x = new Float32Array(n);
      // Heavy-ish tails and an all-zero block to exercise absmax = 0.
      for (let i = 0; i < n; i++) x[i] = rng.normal() * (rng.uniform() < 0.02 ? 8 : 1);
      x.fill(0, 0, blockSize);
      const quantizer = new BlockQuantizer({ kind, bits, blockSize });
      const q = quantizer.quantize(x);
      const ref = referenceQuantize(x, quantizer.levels, blockSize);
      let mismatches = 0;
      for (let i = 0; i < n; i++) if (!ref.ambiguous[i] && q.codes[i] !== ref.codes[i]) mismatches++;
      expect(mismatches).toBe(0);
      const deq = quantizer.dequantize(q);
      for (let i = 0; i < n; i++) {
        // float32 product of two float32 numbers: within half an ulp of the float64 product.
        expect(Math.abs(deq[i] - ref.deq[i])).toBeLessThanOrEqual(Math.abs(ref.deq[i]) * 6e-8);
      }
      // The fused pass reports ‖w − Q‖² and writes w − Q.
      const w = x.map((v) => v + 0.01);
      const diff = new Float32Array(n);
      const errSq = quantizer.quantizeInto(x, quantizer.quantize(x), w, diff);
      let refSq = 0;
      for (let i = 0; i < n; i++) {
        const d = w[i] - deq[i];
        refSq += d * d;
        expect(Math.abs(diff[i] - d)).toBeLessThanOrEqual(Math.abs(d) * 1e-6 + 1e-7);
      }
      expect(Math.abs(errSq - refSq) / refSq).toBeLessThan(1e-6);
    });
  }

  it('more bits give smaller error on Gaussian data', () => {
    const rng = new Rng(seed);
    const x = rng.fillNormal(new Float32Array(64 * 500)) as Float32Array;
    const err = (bits: number) => new BlockQuantizer({ kind: 'nf', bits, blockSize: 64 }).quantizeInto(x, new BlockQuantizer({ kind: 'nf', bits, blockSize: 64 }).quantize(x), null, null);
    expect(err(2)).toBeGreaterThan(err(3));
    expect(err(3)).toBeGreaterThan(err(4));
  });
});

describe('packing', () => {
  for (const bits of [2, 3, 4, 8]) {
    it(`round-trips ${bits}-bit codes of odd length`, () => {
      const rng = new Rng(seed ^ bits);
      const n = 1000 + (rng.nextUint32() % 37);
      const codes = new Uint8Array(n).map(() => rng.nextUint32() % (1 << bits));
      const packed = packCodes(codes, bits);
      expect(packed.length).toBe(packedByteLength(n, bits));
      expect(unpackCodes(packed, bits, n)).toEqual(codes);
    });
  }

  it('puts element 0 in the low nibble for 4-bit codes', () => {
    expect(Array.from(packCodes(Uint8Array.from([1, 2, 3]), 4))).toEqual([0x21, 0x03]);
  });
});

describe('BlockQuantizer.errorSq', () => {
  it('measures ‖x − Q‖² against stored codes (float64 reference)', () => {
    const rng = new Rng(seed);
    const n = 64 * 50 + 7;
    const quantizer = new BlockQuantizer({ kind: 'nf', bits: 2, blockSize: 64 });
    const w = rng.fillNormal(new Float32Array(n)) as Float32Array;
    const x = w.map((v) => v + 0.1 * rng.normal());
    const q = quantizer.quantize(w);
    const deq = quantizer.dequantize(q);
    let ref = 0;
    for (let i = 0; i < n; i++) ref += (x[i] - deq[i]) ** 2;
    expect(Math.abs(quantizer.errorSq(x, q) - ref) / ref).toBeLessThan(1e-9);
  });
});
