// The quantizer's hot loop as one self-contained function: it references nothing outside
// its parameters (constants are literals), so the parallel quantizer can ship its source to
// worker threads. Keep it that way: no imports, no module-level names.

/**
 * Quantizes x blockwise into codes/absmax by `rule`:
 *  0 (absmax): scale = the block's absmax, code = nearest level of x/absmax (ties to the lower);
 *  1 (q8_0) and 2 (q4_0): llama.cpp's reference quantizers (quantize_row_q8_0_ref and
 *    quantize_row_q4_0_ref) step by step in float32: d = absmax/127 (q8_0) or d = (the value of
 *    largest magnitude, first such)/−8 (q4_0), codes from x·(1/d), and the scale kept is d
 *    rounded to fp16, the scale llama.cpp dequantizes with; `levels` are then the integers
 *    code − 128 or code − 8.
 * writes ref − Q into `diff` when given, and returns ‖ref − Q‖²_F (float64 sum).
 * `lut` maps 4096 buckets of [-1, 1] to a code, or 255 where a midpoint falls in the bucket;
 * `mid` holds the midpoints between levels with +∞ last. With `prevCodes`/`prevAbsmax` (a
 * previous quantization of the same shape, only read) it also measures ‖x − Q_prev‖²_F in
 * the same pass and stores it in prevOut[0].
 */
export function quantizeKernel(
  x: Float32Array,
  ref: Float32Array,
  diff: Float32Array | null,
  codes: Uint8Array,
  absmax: Float32Array,
  levels: Float32Array,
  mid: Float64Array,
  lut: Uint8Array,
  blockSize: number,
  prevCodes: Uint8Array | null,
  prevAbsmax: Float32Array | null,
  prevOut: Float64Array | null,
  rule = 0,
): number {
  const n = x.length;
  const f = Math.fround;
  // v (a float32) rounded to the nearest fp16 value, ties to even (as F16C and ggml's fallback do).
  const toHalf = (v: number): number => {
    const a = Math.abs(v);
    if (a >= 65520) return v > 0 ? Infinity : -Infinity;
    let ulp = 5.960464477539063e-8; // 2^-24, the subnormal step below 2^-14
    if (a >= 6.103515625e-5) {
      let e = Math.floor(Math.log2(a));
      if (2 ** e > a) e--;
      else if (2 ** (e + 1) <= a) e++;
      ulp = 2 ** (e - 10);
    }
    const t = a / ulp;
    let r = Math.floor(t);
    const frac = t - r;
    if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
    // The sign of zero too: q4_0's all-zero block has d = 0/−8 = −0, stored as 0x8000.
    return v < 0 || Object.is(v, -0) ? -r * ulp : r * ulp;
  };
  let errSq = 0;
  let prevSq = 0;
  for (let b = 0, start = 0; start < n; b++, start += blockSize) {
    const end = start + blockSize < n ? start + blockSize : n;
    if (prevCodes !== null && prevAbsmax !== null) {
      const ps = prevAbsmax[b];
      for (let i = start; i < end; i++) {
        const e = x[i] - Math.fround(levels[prevCodes[i]] * ps);
        prevSq += e * e;
      }
    }
    let amax = 0;
    let signedMax = 0;
    for (let i = start; i < end; i++) {
      const a = Math.abs(x[i]);
      if (a > amax) {
        amax = a;
        signedMax = x[i];
      }
    }
    if (rule !== 0) {
      const d = rule === 1 ? f(amax / 127) : f(signedMax / -8);
      const id = d !== 0 ? f(1 / d) : 0;
      const s = toHalf(d);
      absmax[b] = s;
      for (let i = start; i < end; i++) {
        const v = f(x[i] * id);
        let c: number;
        if (rule === 1) {
          // roundf: halves away from zero; |v| + 0.5 is exact in float64.
          c = (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5)) + 128;
        } else {
          c = Math.trunc(f(v + 8.5));
          if (c > 15) c = 15;
        }
        codes[i] = c;
        const e = ref[i] - f(levels[c] * s);
        if (diff !== null) diff[i] = e;
        errSq += e * e;
      }
      continue;
    }
    absmax[b] = amax;
    const s = absmax[b];
    const inv = s > 0 ? 1 / s : 0;
    for (let i = start; i < end; i++) {
      const t = x[i] * inv;
      let c = lut[((t + 1) * 2048) | 0];
      if (c === 255) {
        // Rare: the bucket holds a midpoint, so count the midpoints below t exactly.
        let lo = 0;
        let hi = mid.length - 1;
        while (lo < hi) {
          const m = (lo + hi) >> 1;
          if (t > mid[m]) lo = m + 1;
          else hi = m;
        }
        c = lo;
      }
      codes[i] = c;
      const d = ref[i] - Math.fround(levels[c] * s);
      if (diff !== null) diff[i] = d;
      errSq += d * d;
    }
  }
  if (prevOut !== null) prevOut[0] = prevSq;
  return errSq;
}
