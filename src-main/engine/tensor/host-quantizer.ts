// The host (CPU) quantizer of one codebook: the level lookup tables and the plain-JS kernel
// (quantize-kernel.ts) driven over whole matrices, dequantization and the error of a Q. The
// CPU backend's quantize runs on it; native/src/quantize.cu is its GPU twin (same codes bit for bit).
import { QUANT_RULE_NUMBER, type Codebook } from './device';
import { quantizeKernel } from './quantize-kernel';

export interface Quantized {
  codes: Uint8Array;
  absmax: Float32Array;
}

/** Buckets of the level lookup table over [-1, 1] (the kernel hard-codes 4096 and 255). */
const LUT_SIZE = 4096;
const AMBIGUOUS = 255;

export class HostQuantizer {
  readonly levels: Float32Array;
  readonly blockSize: number;
  private readonly rule: number;
  /** Midpoints between neighbouring levels, with +∞ as a sentinel at the end. */
  private readonly mid: Float64Array;
  /**
   * For each bucket of [-1, 1], the code of every value in it, or AMBIGUOUS when a midpoint
   * lies in (or within rounding of) the bucket: those rare values take the exact search.
   */
  private readonly lut: Uint8Array;

  constructor(codebook: Codebook) {
    this.levels = codebook.levels;
    this.blockSize = codebook.blockSize;
    this.rule = QUANT_RULE_NUMBER[codebook.rule ?? 'absmax'];
    const n = this.levels.length;
    this.mid = new Float64Array(n);
    for (let i = 0; i < n - 1; i++) this.mid[i] = (this.levels[i] + this.levels[i + 1]) / 2;
    this.mid[n - 1] = Infinity;
    this.lut = new Uint8Array(LUT_SIZE + 1);
    const slack = 1e-9;
    for (let b = 0; b <= LUT_SIZE; b++) {
      const lo = (b * 2) / LUT_SIZE - 1;
      const hi = ((b + 1) * 2) / LUT_SIZE - 1;
      let c = 0;
      while (c < n - 1 && this.mid[c] < lo) c++;
      const ambiguous = this.mid[c] < hi + slack || (c > 0 && this.mid[c - 1] > lo - slack);
      this.lut[b] = ambiguous ? AMBIGUOUS : c;
    }
  }

  blockCount(n: number): number {
    return Math.ceil(n / this.blockSize);
  }

  quantize(x: Float32Array, out?: Quantized): Quantized {
    const q = out ?? { codes: new Uint8Array(x.length), absmax: new Float32Array(this.blockCount(x.length)) };
    this.quantizeInto(x, q, null, null);
    return q;
  }

  dequantize(q: Quantized, out = new Float32Array(q.codes.length)): Float32Array {
    const { blockSize } = this;
    const levels = this.levels;
    const { codes, absmax } = q;
    for (let b = 0, start = 0; start < out.length; b++, start += blockSize) {
      const s = absmax[b];
      const end = Math.min(out.length, start + blockSize);
      for (let i = start; i < end; i++) out[i] = levels[codes[i]] * s;
    }
    return out;
  }

  /**
   * The fused LoftQ pass: quantize x into `q`, and (when given) write w − Q into `diff`
   * (the matrix whose low-rank approximation comes next). Returns ‖w − Q‖²_F when `w` is
   * given, else ‖x − Q‖²_F, accumulated in float64.
   */
  quantizeInto(x: Float32Array, q: Quantized, w: Float32Array | null, diff: Float32Array | null, previous?: { q: Quantized; out: Float64Array }): number {
    return quantizeKernel(x, w ?? x, diff, q.codes, q.absmax, this.levels, this.mid, this.lut, this.blockSize, previous?.q.codes ?? null, previous?.q.absmax ?? null, previous?.out ?? null, this.rule);
  }

  /** The tables the kernel needs (for worker threads). */
  tables(): { levels: Float32Array; mid: Float64Array; lut: Uint8Array; rule: number } {
    return { levels: this.levels, mid: this.mid, lut: this.lut, rule: this.rule };
  }

  /** ‖x − dequantize(q)‖²_F without materializing the dequantized matrix. */
  errorSq(x: Float32Array, q: Quantized): number {
    const { blockSize, levels } = this;
    const { codes, absmax } = q;
    let sum = 0;
    for (let b = 0, start = 0; start < x.length; b++, start += blockSize) {
      const end = Math.min(x.length, start + blockSize);
      const s = absmax[b];
      for (let i = start; i < end; i++) {
        const e = x[i] - Math.fround(levels[codes[i]] * s);
        sum += e * e;
      }
    }
    return sum;
  }
}
