// Blockwise absmax quantization over the row-major flattened matrix: each block of
// `blockSize` values stores its absmax (float32) and one code per value, the index of the
// nearest codebook level to value/absmax (ties go to the lower level).
import { UserError } from '../errors';
import { codebookLevels, type QuantKind } from './codebook';

export interface QuantSpec {
  kind: QuantKind;
  bits: number;
  blockSize: number;
}

export interface Quantized {
  codes: Uint8Array;
  absmax: Float32Array;
}

/** Buckets of the level lookup table over [-1, 1]; finer than any gap between midpoints. */
const LUT_SIZE = 4096;
const AMBIGUOUS = 255;

export class BlockQuantizer {
  readonly levels: Float32Array;
  /** Midpoints between neighbouring levels, with +∞ as a sentinel at the end. */
  private readonly mid: Float64Array;
  /**
   * For each bucket of [-1, 1], the code of every value in it, or AMBIGUOUS when a midpoint
   * lies in (or within rounding of) the bucket: those rare values take the exact search.
   */
  private readonly lut: Uint8Array;

  constructor(readonly spec: QuantSpec) {
    if (!Number.isInteger(spec.blockSize) || spec.blockSize < 1 || spec.blockSize > 1 << 20) {
      throw new UserError(`block size must be a positive integer, got ${spec.blockSize}`);
    }
    this.levels = codebookLevels(spec.kind, spec.bits);
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
    return Math.ceil(n / this.spec.blockSize);
  }

  quantize(x: Float32Array, out?: Quantized): Quantized {
    const q = out ?? { codes: new Uint8Array(x.length), absmax: new Float32Array(this.blockCount(x.length)) };
    this.quantizeInto(x, q, null, null);
    return q;
  }

  dequantize(q: Quantized, out = new Float32Array(q.codes.length)): Float32Array {
    const { blockSize } = this.spec;
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
  quantizeInto(x: Float32Array, q: Quantized, w: Float32Array | null, diff: Float32Array | null): number {
    const { blockSize } = this.spec;
    const { levels, mid, lut } = this;
    const { codes, absmax } = q;
    const ref = w ?? x;
    const n = x.length;
    const half = LUT_SIZE / 2;
    let errSq = 0;
    // Hot loop (runs over every weight T times): locals only, codeOf inlined by hand.
    for (let b = 0, start = 0; start < n; b++, start += blockSize) {
      const end = start + blockSize < n ? start + blockSize : n;
      let amax = 0;
      for (let i = start; i < end; i++) {
        const a = Math.abs(x[i]);
        if (a > amax) amax = a;
      }
      absmax[b] = amax;
      const s = absmax[b];
      const inv = s > 0 ? 1 / s : 0;
      for (let i = start; i < end; i++) {
        const t = x[i] * inv;
        let c = lut[((t + 1) * half) | 0];
        if (c === AMBIGUOUS) c = exactCode(mid, t);
        codes[i] = c;
        const d = ref[i] - Math.fround(levels[c] * s);
        if (diff !== null) diff[i] = d;
        errSq += d * d;
      }
    }
    return errSq;
  }

  /**
   * One LoftQ step in a single pass: quantize x = W − s·B·A into `q`, write W − Q into
   * `diff`, and measure against the previous step's codes `prev` the error that step left,
   * ‖x − Q_prev‖ = ‖W − Q_prev − s·B·A‖. Returns both squared norms (float64 sums).
   */
  loftqStep(x: Float32Array, w: Float32Array, q: Quantized, diff: Float32Array, prev: Quantized | null): { errSq: number; prevErrSq: number } {
    const { blockSize } = this.spec;
    const { levels, mid, lut } = this;
    const { codes, absmax } = q;
    const prevCodes = prev ? prev.codes : codes;
    const prevAbsmax = prev ? prev.absmax : absmax;
    const hasPrev = prev !== null;
    const n = x.length;
    const half = LUT_SIZE / 2;
    let errSq = 0;
    let prevErrSq = 0;
    for (let b = 0, start = 0; start < n; b++, start += blockSize) {
      const end = start + blockSize < n ? start + blockSize : n;
      let amax = 0;
      for (let i = start; i < end; i++) {
        const a = Math.abs(x[i]);
        if (a > amax) amax = a;
      }
      const ps = prevAbsmax[b];
      absmax[b] = amax;
      const s = absmax[b];
      const inv = s > 0 ? 1 / s : 0;
      for (let i = start; i < end; i++) {
        const xi = x[i];
        if (hasPrev) {
          const e = xi - Math.fround(levels[prevCodes[i]] * ps);
          prevErrSq += e * e;
        }
        const t = xi * inv;
        let c = lut[((t + 1) * half) | 0];
        if (c === AMBIGUOUS) c = exactCode(mid, t);
        codes[i] = c;
        const d = w[i] - Math.fround(levels[c] * s);
        diff[i] = d;
        errSq += d * d;
      }
    }
    return { errSq, prevErrSq };
  }

  /** ‖x − dequantize(q)‖²_F without materializing the dequantized matrix. */
  errorSq(x: Float32Array, q: Quantized): number {
    const { blockSize } = this.spec;
    const { levels } = this;
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

/** Number of midpoints strictly below t: the nearest level's index, ties to the lower. */
function exactCode(mid: Float64Array, t: number): number {
  let lo = 0;
  let hi = mid.length - 1; // mid[last] = +∞, so the answer is in [0, last]
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (t > mid[m]) lo = m + 1;
    else hi = m;
  }
  return lo;
}
