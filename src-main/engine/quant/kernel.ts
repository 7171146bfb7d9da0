// The quantizer's hot loop as one self-contained function: it references nothing outside
// its parameters (constants are literals), so the parallel quantizer can ship its source to
// worker threads. Keep it that way: no imports, no module-level names.

/**
 * Quantizes x blockwise into codes/absmax (nearest level of x/absmax, ties to the lower),
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
): number {
  const n = x.length;
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
    for (let i = start; i < end; i++) {
      const a = Math.abs(x[i]);
      if (a > amax) amax = a;
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
