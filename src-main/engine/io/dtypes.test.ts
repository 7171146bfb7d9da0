import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import {
  bf16BytesToF32,
  f16BytesToF32,
  f32ToBf16,
  f32ToF16,
  findNonFinite,
  f64BytesToF32,
  f32ToF64Bytes,
} from './dtypes';
import { refBf16, refHalf } from '../../test-support/float-reference';


// Reference encoder: nearest representable value by search over the (monotonic) positive
// codes, ties to the even code; `top` is the first code past the largest finite value.
function refEncode(x: number, decode: (h: number) => number, top: number, overflowValue: number): number {
  if (Number.isNaN(x)) return -1;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  let lo = 0;
  let hi = top; // decode(top) treated as overflowValue
  const val = (k: number): number => (k === top ? overflowValue : decode(k));
  if (a >= overflowValue) return sign | top;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (val(mid) <= a) lo = mid;
    else hi = mid;
  }
  const dlo = a - val(lo);
  const dhi = val(hi) - a;
  const k = dlo < dhi ? lo : dhi < dlo ? hi : lo % 2 === 0 ? lo : hi;
  return sign | k;
}

function u16(bytes: Uint8Array): Uint16Array {
  return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
}

function allCodes(): Uint8Array {
  const codes = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) codes[i] = i;
  return new Uint8Array(codes.buffer);
}

function sameValue(a: number, b: number): boolean {
  return Number.isNaN(a) ? Number.isNaN(b) : Object.is(a, b);
}

describe('float16 / bfloat16 decoding', () => {
  it('decodes every f16 code like the reference (subnormals, inf, nan, -0)', () => {
    const out = f16BytesToF32(allCodes());
    for (let h = 0; h < 65536; h++) {
      if (!sameValue(out[h], refHalf(h))) throw new Error(`f16 0x${h.toString(16)}: ${out[h]} vs ${refHalf(h)}`);
    }
  });

  it('decodes every bf16 code like the reference', () => {
    const out = bf16BytesToF32(allCodes());
    for (let h = 0; h < 65536; h++) {
      if (!sameValue(out[h], refBf16(h))) throw new Error(`bf16 0x${h.toString(16)}: ${out[h]} vs ${refBf16(h)}`);
    }
  });

  it('decodes unaligned input', () => {
    const b = new Uint8Array(5);
    b.set([0x00, 0x3c, 0x00, 0xc0], 1); // 1.0, -2.0 at an odd offset
    expect(Array.from(f16BytesToF32(b.subarray(1)))).toEqual([1, -2]);
  });
});

describe('float32 → float16 / bfloat16 encoding', () => {
  it('round-trips every representable value exactly', () => {
    const halves = f16BytesToF32(allCodes());
    const back = u16(f32ToF16(halves));
    const bfs = bf16BytesToF32(allCodes());
    const bback = u16(f32ToBf16(bfs));
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(halves[h])) expect(Number.isNaN(refHalf(back[h]))).toBe(true);
      else expect(back[h]).toBe(h);
      if (Number.isNaN(bfs[h])) expect(Number.isNaN(refBf16(bback[h]))).toBe(true);
      else expect(bback[h]).toBe(h);
    }
  });

  it('rounds random float32 bit patterns to nearest even, like the reference', () => {
    const seed = Date.now();
    const rng = new Rng(seed);
    const n = 20000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      // Half the samples near the f16 range (incl. subnormals and overflow), half anywhere.
      const r = rng.nextUint32();
      const exp = 96 + Math.floor(rng.uniform() * 50); // f32 exponents 2^-31 .. 2^18
      bits[i] = i % 2 === 0 ? r : ((r & 0x807fffff) | (exp << 23)) >>> 0;
    }
    const x = new Float32Array(bits.buffer);
    const h = u16(f32ToF16(x));
    const b = u16(f32ToBf16(x));
    for (let i = 0; i < n; i++) {
      const wantH = refEncode(x[i], refHalf, 0x7c00, 65536);
      const wantB = refEncode(x[i], refBf16, 0x7f80, 2 ** 128);
      if (wantH === -1) {
        expect(Number.isNaN(refHalf(h[i])), `seed ${seed}`).toBe(true);
        expect(Number.isNaN(refBf16(b[i])), `seed ${seed}`).toBe(true);
        continue;
      }
      if (h[i] !== wantH) throw new Error(`seed ${seed}: f16 of ${x[i]}: 0x${h[i].toString(16)} vs 0x${wantH.toString(16)}`);
      if (b[i] !== wantB) throw new Error(`seed ${seed}: bf16 of ${x[i]}: 0x${b[i].toString(16)} vs 0x${wantB.toString(16)}`);
    }
  });

  it('handles the edge cases explicitly', () => {
    const x = new Float32Array([2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 65504, 65519, 65520, -0, Infinity, -Infinity, NaN]);
    expect(Array.from(u16(f32ToF16(x)))).toEqual([
      0x0001, 0x0000, 0x0001, 0x7bff, 0x7bff, 0x7c00, 0x8000, 0x7c00, 0xfc00, 0x7e00,
    ]);
    // 1 + 2^-8 is the tie between bf16 1.0 and 1 + 2^-7: even → 1.0; just above → up.
    const y = new Float32Array([1 + 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 1 + 3 * 2 ** -8, 3.4e38]);
    expect(Array.from(u16(f32ToBf16(y)))).toEqual([0x3f80, 0x3f81, 0x3f82, 0x7f80]);
  });

  it('round-trips F64', () => {
    const x = new Float32Array([1.5, -3.25, 1e-30, Infinity]);
    expect(Array.from(f64BytesToF32(f32ToF64Bytes(x)))).toEqual(Array.from(x));
  });
});

describe('findNonFinite', () => {
  it('finds the first NaN or infinity', () => {
    expect(findNonFinite(new Float32Array([1, 2, 3]))).toBe(-1);
    expect(findNonFinite(new Float32Array([1, NaN, Infinity]))).toBe(1);
    expect(findNonFinite(new Float64Array([0, -0, -Infinity]))).toBe(2);
    expect(findNonFinite(new Float32Array(0))).toBe(-1);
  });
});
