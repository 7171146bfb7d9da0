// llama.cpp's block layouts for the quantizers whose Q we fit adapters to: a run keeps codes
// and fp16-exact scales (quantized.safetensors); GGUF wants them interleaved per block of 32.
//   q8_0: fp16 d, then 32 int8 (code − 128)
//   q4_0: fp16 d, then 16 bytes: byte j holds element j (low nibble) and element j + 16 (high)
import { f16BitsToF32, f32BitsToF16Bits } from '../io/dtypes';
import { GGML_BLOCK_SIZE } from '../quant/codebook';
import type { QuantRule } from '../tensor/device';
import { GGML_BLOCK } from './format';

export type GgmlRule = Exclude<QuantRule, 'absmax'>;
const TYPE_OF: Record<GgmlRule, 'Q4_0' | 'Q8_0'> = { q4_0: 'Q4_0', q8_0: 'Q8_0' };

export function ggmlTypeOf(rule: GgmlRule): 'Q4_0' | 'Q8_0' {
  return TYPE_OF[rule];
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

function halfBits(v: number): number {
  scratch[0] = v;
  return f32BitsToF16Bits(scratchBits[0]);
}

/** Blocks of `rule` from one code per element (unpacked) and one scale per block of 32. */
export function encodeGgmlBlocks(rule: GgmlRule, codes: Uint8Array, scales: Float32Array): Uint8Array {
  const blocks = codes.length / GGML_BLOCK_SIZE;
  if (!Number.isInteger(blocks) || scales.length !== blocks) throw new Error(`${rule}: ${codes.length} codes and ${scales.length} scales do not make whole blocks of ${GGML_BLOCK_SIZE}`);
  const size = GGML_BLOCK[TYPE_OF[rule]].bytes;
  const out = new Uint8Array(blocks * size);
  for (let b = 0; b < blocks; b++) {
    const o = b * size;
    const h = halfBits(scales[b]);
    if (f16BitsToF32(h) !== scales[b]) throw new Error(`${rule}: block ${b}'s scale ${scales[b]} is not an fp16 value`);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    const c = b * GGML_BLOCK_SIZE;
    if (rule === 'q8_0') {
      for (let j = 0; j < GGML_BLOCK_SIZE; j++) out[o + 2 + j] = (codes[c + j] - 128) & 0xff;
    } else {
      for (let j = 0; j < 16; j++) out[o + 2 + j] = codes[c + j] | (codes[c + j + 16] << 4);
    }
  }
  return out;
}

/** The values llama.cpp dequantizes `bytes` of `rule` to (float32, as ggml computes them). */
export function decodeGgmlBlocks(rule: GgmlRule, bytes: Uint8Array): Float32Array {
  const size = GGML_BLOCK[TYPE_OF[rule]].bytes;
  const blocks = bytes.length / size;
  const out = new Float32Array(blocks * GGML_BLOCK_SIZE);
  for (let b = 0; b < blocks; b++) {
    const o = b * size;
    const d = f16BitsToF32(bytes[o] | (bytes[o + 1] << 8));
    const c = b * GGML_BLOCK_SIZE;
    if (rule === 'q8_0') {
      for (let j = 0; j < GGML_BLOCK_SIZE; j++) out[c + j] = ((bytes[o + 2 + j] << 24) >> 24) * d;
    } else {
      for (let j = 0; j < 16; j++) {
        out[c + j] = ((bytes[o + 2 + j] & 0x0f) - 8) * d;
        out[c + j + 16] = ((bytes[o + 2 + j] >> 4) - 8) * d;
      }
    }
  }
  return out;
}
