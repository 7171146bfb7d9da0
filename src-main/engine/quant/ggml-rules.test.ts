// Our q4_0 and q8_0 quantizers against llama.cpp's own (libggml-base.so from node-llama-cpp's
// prebuilt binaries, called through Python's ctypes): the block bytes must be identical, so the
// base a run writes to GGUF is the Q its adapter was fitted to, and what llama-quantize would
// have produced from the same float32 weights.
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggmlQuantize, ggmlReferenceUnavailable, ggmlToHalf } from '../../test-support/ggml-reference';
import { makeTempDir } from '../../test-support/tiny-model';
import { decodeGgmlBlocks, encodeGgmlBlocks, ggmlTypeOf, type GgmlRule } from '../gguf/ggml-blocks';
import { f32BitsToF16Bits } from '../io/dtypes';
import { Rng } from '../util/random';
import { BlockQuantizer } from './blockwise';

const seed = Date.now();
const unavailable = ggmlReferenceUnavailable();

let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-ggml-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Rows that exercise the rounding: Gaussian, ties at .5 of the step, zero blocks, tiny and huge scales. */
function hardInputs(rows: number, cols: number, rng: Rng): Float32Array {
  const x = new Float32Array(rows * cols);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal() * 0.02;
  const blocks = x.length / 32;
  for (let b = 0; b < blocks; b++) {
    const o = b * 32;
    switch (b % 8) {
      case 1: // an all-zero block: d = 0, codes of zero
        x.fill(0, o, o + 32);
        break;
      case 2: // exact multiples of a step, and halves between them
        for (let j = 0; j < 32; j++) x[o + j] = ((j % 17) - 8 + (j % 2) * 0.5) * 0.125;
        break;
      case 3: // the largest magnitude twice with opposite signs (q4_0 takes the first)
        x[o + 5] = -0.1;
        x[o + 20] = 0.1;
        break;
      case 4: // subnormal fp16 scales
        for (let j = 0; j < 32; j++) x[o + j] *= 1e-4;
        break;
      case 5: // large values (scales near fp16's top)
        for (let j = 0; j < 32; j++) x[o + j] *= 1e5;
        break;
      default:
        break;
    }
  }
  return x;
}

describe.skipIf(unavailable !== null)(`q4_0 and q8_0 against llama.cpp's quantizers (seed ${seed})`, () => {
  for (const [rule, bits] of [['q4_0', 4], ['q8_0', 8]] as Array<[GgmlRule, number]>) {
    it(`${rule}: the block bytes equal ggml_quantize_chunk's, and decode to our Q`, () => {
      const rng = new Rng(seed + bits);
      const rows = 24;
      const cols = 256;
      const x = hardInputs(rows, cols, rng);
      const quantizer = new BlockQuantizer({ kind: 'ggml', bits: bits as 4 | 8, blockSize: 32 });
      const q = quantizer.quantize(x);
      const ours = encodeGgmlBlocks(rule, q.codes, q.absmax);
      const theirs = ggmlQuantize(tmp, ggmlTypeOf(rule), x, rows, cols);
      expect(theirs.length).toBe(ours.length);
      let differing = 0;
      for (let i = 0; i < ours.length; i++) if (ours[i] !== theirs[i]) differing++;
      expect(differing).toBe(0);
      // What llama.cpp dequantizes is, value for value, what our engine computes Q as.
      const deq = quantizer.dequantize(q);
      expect(Array.from(decodeGgmlBlocks(rule, theirs))).toEqual(Array.from(deq));
    });
  }

  it('the kernel rounds scales to fp16 exactly as ggml does (ties to even, subnormals, overflow)', () => {
    const rng = new Rng(seed + 1);
    const v = new Float32Array(4096);
    for (let i = 0; i < v.length; i++) {
      const e = Math.floor(rng.uniform() * 40) - 28; // 2^-28 … 2^11
      v[i] = (rng.uniform() < 0.5 ? -1 : 1) * (1 + rng.uniform()) * 2 ** e;
    }
    // Exact halfway cases between fp16 neighbours, at normal and subnormal magnitudes.
    v.set([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24 * 1.5, 2 ** -24 * 2.5, 65519, 65520, 6.1035e-5], 0);
    const theirs = ggmlToHalf(tmp, v);
    const bits = new Uint32Array(v.buffer);
    for (let i = 0; i < v.length; i++) expect(f32BitsToF16Bits(bits[i]), `value ${v[i]}`).toBe(theirs[i]);
    // The kernel's scale for a q8_0 block whose absmax is 127·v is fp16(v).
    const block = new Float32Array(32 * 64);
    for (let b = 0; b < 64; b++) block[b * 32] = v[b] * 127;
    const q = new BlockQuantizer({ kind: 'ggml', bits: 8, blockSize: 32 }).quantize(block);
    const scaleBits = new Uint32Array(q.absmax.buffer);
    for (let b = 0; b < 64; b++) {
      const d = new Float32Array([Math.fround(Math.abs(block[b * 32]) / 127)]);
      expect(f32BitsToF16Bits(scaleBits[b])).toBe(f32BitsToF16Bits(new Uint32Array(d.buffer)[0]));
    }
  });
});

describe('ggml block layout', () => {
  it('q4_0 packs element j in the low nibble and j + 16 in the high nibble, after the fp16 scale', () => {
    const codes = Uint8Array.from({ length: 32 }, (_, j) => j % 16);
    const bytes = encodeGgmlBlocks('q4_0', codes, Float32Array.of(0.5));
    expect(bytes.length).toBe(18);
    expect([bytes[0], bytes[1]]).toEqual([0x00, 0x38]); // fp16 0.5 = 0x3800, little-endian
    expect(bytes[2]).toBe(0 | (0 << 4));
    expect(bytes[3]).toBe(1 | (1 << 4));
    expect(Array.from(decodeGgmlBlocks('q4_0', bytes).slice(0, 3))).toEqual([-4, -3.5, -3]);
  });

  it('q8_0 stores codes − 128 as int8 and refuses a scale that is not an fp16 value', () => {
    const codes = Uint8Array.from({ length: 32 }, (_, j) => j * 8);
    const bytes = encodeGgmlBlocks('q8_0', codes, Float32Array.of(2));
    expect(bytes.length).toBe(34);
    expect(bytes[2]).toBe(0x80); // −128
    expect(decodeGgmlBlocks('q8_0', bytes)[31]).toBe((31 * 8 - 128) * 2);
    expect(() => encodeGgmlBlocks('q8_0', codes, Float32Array.of(0.1))).toThrow(/not an fp16 value/);
  });
});

if (unavailable !== null) {
  describe('q4_0 and q8_0 against llama.cpp', () => {
    it.skip(`skipped: ${unavailable}`, () => {});
  });
}
