// Bit packing of codes: a little-endian bit stream, code i occupying bits
// [i·bits, (i+1)·bits) (so 4-bit codes put element 2j in the low nibble of byte j).
import { UserError } from '../errors';

export function packedByteLength(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

export function packCodes(codes: Uint8Array, bits: number): Uint8Array {
  if (bits === 8) return codes.slice();
  const out = new Uint8Array(packedByteLength(codes.length, bits));
  if (bits === 4) {
    const n = codes.length;
    for (let i = 0, j = 0; i < n; i += 2, j++) out[j] = codes[i] | ((i + 1 < n ? codes[i + 1] : 0) << 4);
    return out;
  }
  if (bits === 2) {
    for (let i = 0; i < codes.length; i++) out[i >> 2] |= codes[i] << ((i & 3) * 2);
    return out;
  }
  let bit = 0;
  for (let i = 0; i < codes.length; i++, bit += bits) {
    const byte = bit >> 3;
    const shift = bit & 7;
    const v = codes[i] << shift;
    out[byte] |= v & 0xff;
    if (shift + bits > 8) out[byte + 1] |= v >> 8;
  }
  return out;
}

export function unpackCodes(packed: Uint8Array, bits: number, count: number): Uint8Array {
  if (packed.length < packedByteLength(count, bits)) {
    throw new UserError(`packed codes too short: ${packed.length} bytes for ${count} ${bits}-bit codes`);
  }
  if (bits === 8) return packed.slice(0, count);
  const out = new Uint8Array(count);
  const mask = (1 << bits) - 1;
  let bit = 0;
  for (let i = 0; i < count; i++, bit += bits) {
    const byte = bit >> 3;
    const shift = bit & 7;
    const word = packed[byte] | (shift + bits > 8 ? packed[byte + 1] << 8 : 0);
    out[i] = (word >> shift) & mask;
  }
  return out;
}
