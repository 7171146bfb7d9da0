// Standard normal values from a counter-based generator: value i of a stream depends only on
// (seed, i), so the CPU backend (here) and the CUDA kernel draw the same sketch matrices, and a
// LoftQ run takes the same path on both. Integer mixing is 32-bit (exact in both); Box–Muller
// runs in float64 and rounds to float32.
// Bit-exact twin: randomNormalKernel in native/src/random.cu repeats this arithmetic operation
// for operation — change both together (tensor/device.test.ts compares a device's stream with
// fillNormal here).

function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

export interface NormalStream {
  inner: number;
  outer: number;
}

export function normalStream(seed: number): NormalStream {
  return { inner: mix(seed >>> 0), outer: mix((seed ^ 0x85ebca6b) >>> 0) };
}

function hash(s: NormalStream, j: number): number {
  return mix(((mix((j ^ s.inner) >>> 0) + s.outer) >>> 0));
}

/** Value i of the stream: pair p = ⌊i/2⌋ gives two uniforms, Box–Muller's cos (even i) or sin (odd i). */
function pairUniforms(s: NormalStream, p: number): [number, number] {
  const u1 = (hash(s, (2 * p) >>> 0) + 1) * 2.3283064365386963e-10; // (0, 1]
  const u2 = hash(s, (2 * p + 1) >>> 0) * 2.3283064365386963e-10; // [0, 1)
  return [Math.sqrt(-2 * Math.log(u1)), 2 * Math.PI * u2];
}

/** Fills `out` with the first out.length values of the stream. */
export function fillNormal(out: Float32Array, seed: number): Float32Array {
  const s = normalStream(seed);
  for (let i = 0; i < out.length; i += 2) {
    const [radius, angle] = pairUniforms(s, i >>> 1);
    out[i] = radius * Math.cos(angle);
    if (i + 1 < out.length) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}
