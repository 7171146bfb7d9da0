// Quantization codebooks: the sorted levels a block's values are rounded to, times the
// block's scale. NF and uniform: levels in [-1, 1], scale = the block's absmax. ggml (llama.cpp's
// own block formats q4_0 and q8_0): integer levels, scale = llama.cpp's fp16 block scale, so
// the Q we fit an adapter to is exactly the Q llama.cpp runs.
import { UserError } from '../errors';
import type { QuantRule } from '../tensor/device';

export type QuantKind = 'nf' | 'uniform' | 'ggml';
/** llama.cpp's legacy formats quantize rows in blocks of 32. */
export const GGML_BLOCK_SIZE = 32;
const GGML_BITS = [4, 8];
export type Bits = 2 | 3 | 4 | 8;

export const SUPPORTED_BITS: readonly Bits[] = [2, 3, 4, 8];

/** QLoRA's offset: the quantile of the outermost level, chosen so the table reaches ±1. */
const NF_OFFSET = 0.9677083;

/** erf by its Maclaurin series; accurate to double precision for |x| ≤ 2 (all we need). */
function erf(x: number): number {
  let term = x;
  let sum = x;
  const x2 = x * x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

function normalCdf(x: number): number {
  return 0.5 * (1 + erf(x / Math.SQRT2));
}

/** Standard normal quantile for p in [0.5, 0.97]: Newton on the CDF from x = 0. */
export function normalQuantile(p: number): number {
  let x = 0;
  for (let i = 0; i < 100; i++) {
    const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    const step = (normalCdf(x) - p) / pdf;
    x -= step;
    if (Math.abs(step) < 1e-15) break;
  }
  return x;
}

function linspace(start: number, stop: number, n: number): number[] {
  if (n === 1) return [start];
  return Array.from({ length: n }, (_, i) => start + ((stop - start) * i) / (n - 1));
}

/** NF-k: normal quantiles, asymmetric (one more positive level) with an exact zero. */
function normalFloatLevels(bits: number): number[] {
  const half = 2 ** (bits - 1);
  const positive = linspace(NF_OFFSET, 0.5, half + 1).slice(0, -1).map(normalQuantile);
  const negative = linspace(NF_OFFSET, 0.5, half).slice(0, -1).map((p) => -normalQuantile(p));
  const all = [...positive, ...negative, 0].sort((a, b) => a - b);
  const max = Math.max(...all.map(Math.abs));
  return all.map((v) => v / max);
}

/**
 * The sorted float32 levels of a codebook. Uniform-k is the symmetric grid
 * linspace(-1, 1, 2^k) scaled by the block absmax (no zero level: a zero block is exact
 * anyway since its absmax is 0). 8-bit is always uniform: NF-8 has no use in practice.
 */
export function codebookLevels(kind: QuantKind, bits: number): Float32Array {
  if (kind === 'ggml') {
    if (!GGML_BITS.includes(bits)) throw new UserError(`llama.cpp's formats here are q4_0 and q8_0 (4 or 8 bits), got ${bits} bits`);
    // q4_0: codes 0..15 stand for −8..7; q8_0: codes 0..255 for −128..127 (int8 + 128).
    const offset = 2 ** (bits - 1);
    return Float32Array.from({ length: 2 ** bits }, (_, c) => c - offset);
  }
  if (!SUPPORTED_BITS.includes(bits as Bits)) {
    throw new UserError(`unsupported bits ${bits}: choose one of ${SUPPORTED_BITS.join(', ')}`);
  }
  const levels = kind === 'nf' && bits <= 4 ? normalFloatLevels(bits) : linspace(-1, 1, 2 ** bits);
  return Float32Array.from(levels);
}

/** The codebook that a (kind, bits) pair actually uses, for run metadata. */
export function codebookName(kind: QuantKind, bits: number): string {
  if (kind === 'ggml') return `q${bits}_0`;
  return kind === 'nf' && bits <= 4 ? `nf${bits}` : `uniform${bits}`;
}

export function quantRule(kind: QuantKind, bits: number): QuantRule {
  return kind === 'ggml' ? (codebookName(kind, bits) as QuantRule) : 'absmax';
}
