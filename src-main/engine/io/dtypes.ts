// Safetensors dtypes and the float conversions between them and float32. Everything on disk is
// little endian; typed-array views are used only when the host is little endian too (with a
// DataView fallback), so results never depend on the machine.

export type Dtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
export type FloatDtype = 'F32' | 'F16' | 'BF16' | 'F64';

export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  F64: 8,
  I64: 8,
  F32: 4,
  I32: 4,
  F16: 2,
  BF16: 2,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export const DTYPES = Object.keys(DTYPE_BYTES) as Dtype[];

export function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

export function isFloatDtype(s: unknown): s is FloatDtype {
  return s === 'F32' || s === 'F16' || s === 'BF16' || s === 'F64';
}

export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The bytes of a typed array, as a view (no copy). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Fresh Uint8Array holding `a` in little-endian byte order, whatever the host. */
export function f32ToLeBytes(a: Float32Array): Uint8Array {
  if (HOST_LITTLE_ENDIAN) return bytesOf(a.slice());
  const out = new Uint8Array(a.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) dv.setFloat32(i * 4, a[i], true);
  return out;
}

// A view is possible only when the bytes are aligned for the element type.
function aligned(b: Uint8Array, size: number): boolean {
  return HOST_LITTLE_ENDIAN && b.byteOffset % size === 0;
}

function checkLength(b: Uint8Array, size: number): number {
  if (b.length % size !== 0) throw new Error(`byte length ${b.length} is not a multiple of ${size}`);
  return b.length / size;
}

// ---- to float32 ----

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float16 bits → float32 bits, exact (f16 subnormals are f32 normals). */
function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  f32Scratch[0] = mant * 2 ** -24;
  return (sign | u32Scratch[0]) >>> 0;
}

// 65536 entries (256 KiB) built on first use: the fastest exact f16 decoder in plain JS.
let halfTable: Uint32Array | null = null;
function getHalfTable(): Uint32Array {
  if (!halfTable) {
    halfTable = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfBitsToFloatBits(h);
  }
  return halfTable;
}

export function f16BitsToF32(h: number): number {
  u32Scratch[0] = halfBitsToFloatBits(h & 0xffff);
  return f32Scratch[0];
}

export function bf16BitsToF32(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0];
}

function readU16(b: Uint8Array): Uint16Array {
  const n = checkLength(b, 2);
  if (aligned(b, 2)) return new Uint16Array(b.buffer, b.byteOffset, n);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = b[2 * i] | (b[2 * i + 1] << 8);
  return out;
}

export function f16BytesToF32(b: Uint8Array): Float32Array {
  const src = readU16(b);
  const table = getHalfTable();
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = table[src[i]];
  return out;
}

export function bf16BytesToF32(b: Uint8Array): Float32Array {
  const src = readU16(b);
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

export function f32BytesToF32(b: Uint8Array): Float32Array {
  const n = checkLength(b, 4);
  if (aligned(b, 4)) return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
  return out;
}

export function f64BytesToF32(b: Uint8Array): Float32Array {
  const n = checkLength(b, 8);
  const out = new Float32Array(n);
  if (aligned(b, 8)) {
    const src = new Float64Array(b.buffer, b.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = src[i];
  } else {
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
  }
  return out;
}

/** Decodes little-endian bytes of a float dtype into float32 (F64 rounds to nearest). */
export function floatBytesToF32(b: Uint8Array, dtype: FloatDtype): Float32Array {
  switch (dtype) {
    case 'F32':
      return f32BytesToF32(b);
    case 'F16':
      return f16BytesToF32(b);
    case 'BF16':
      return bf16BytesToF32(b);
    case 'F64':
      return f64BytesToF32(b);
  }
}

// ---- from float32 ----

/** float32 bits → bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function f32BitsToBf16Bits(u: number): number {
  u >>>= 0;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 bits → float16 bits, round to nearest even, overflow to ±inf, gradual underflow. */
export function f32BitsToF16Bits(u: number): number {
  u >>>= 0;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  let shift: number;
  let base: number;
  if (e <= 0) {
    // Subnormal result: below half the smallest subnormal everything rounds to zero.
    if (e < -10) return sign;
    mant |= 0x800000;
    shift = 14 - e;
    base = 0;
  } else {
    shift = 13;
    base = e << 10;
  }
  const halfway = 1 << (shift - 1);
  const rem = mant & ((1 << shift) - 1);
  let m = mant >>> shift;
  if (rem > halfway || (rem === halfway && (m & 1) === 1)) m++;
  // A carry out of the mantissa correctly bumps the exponent (up to inf).
  return sign | (base + m);
}

function writeU16(bits: Uint16Array): Uint8Array {
  if (HOST_LITTLE_ENDIAN) return bytesOf(bits);
  const out = new Uint8Array(bits.length * 2);
  for (let i = 0; i < bits.length; i++) {
    out[2 * i] = bits[i] & 0xff;
    out[2 * i + 1] = bits[i] >>> 8;
  }
  return out;
}

export function f32ToBf16(a: Float32Array): Uint8Array {
  const src = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32BitsToBf16Bits(src[i]);
  return writeU16(out);
}

export function f32ToF16(a: Float32Array): Uint8Array {
  const src = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32BitsToF16Bits(src[i]);
  return writeU16(out);
}

export function f32ToF64Bytes(a: Float32Array): Uint8Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i];
  if (HOST_LITTLE_ENDIAN) return bytesOf(out);
  const b = new Uint8Array(a.length * 8);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < a.length; i++) dv.setFloat64(i * 8, a[i], true);
  return b;
}

/** Encodes float32 values as little-endian bytes of the given float dtype. */
export function encodeF32(a: Float32Array, dtype: FloatDtype): Uint8Array {
  switch (dtype) {
    case 'F32':
      return f32ToLeBytes(a);
    case 'F16':
      return f32ToF16(a);
    case 'BF16':
      return f32ToBf16(a);
    case 'F64':
      return f32ToF64Bytes(a);
  }
}

/** Index of the first NaN or ±Inf, or -1 when all values are finite. */
export function findNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is 0 for every finite v and NaN for NaN and ±Inf.
    if (v - v !== 0) return i;
  }
  return -1;
}
