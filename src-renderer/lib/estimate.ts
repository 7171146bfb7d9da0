// The Quantize view's live estimate: average bits per weight (codes plus one scale per block,
// float32 absmax or llama.cpp's fp16, counted by the engine's own rule), backbone memory and
// adapter memory.
import { storedBits } from '../../src-main/engine/rules/average-bits';

export interface EstimateInput {
  /** [out, in] of every target matrix. */
  shapes: readonly (readonly [number, number])[];
  /** Bits of each target (same order). */
  bits: readonly number[];
  block: number;
  /** Bits of each block's scale: 32 (the engine's float32 absmax), 16 for llama.cpp's fp16 scales. */
  scaleBits?: number;
  rank: number;
  /** All parameters of the model (targets included). */
  parameters: number;
  /** The model's dtype (config torch_dtype), for the parameters that are not quantized. */
  dtype: string;
  /** Bytes of the model's weight files, the fallback for an unknown dtype. */
  weightBytes?: number;
}

export interface Estimate {
  targetParams: number;
  /** Mean stored bits per target weight, absmax included. */
  avgBits: number;
  /** Packed codes + absmax of the targets. */
  quantizedBytes: number;
  /** Everything else (embeddings, norms, head) at the model's dtype. */
  otherBytes: number;
  backboneBytes: number;
  adapterParams: number;
  /** A and B in float32. */
  adapterBytes: number;
}

const DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  float: 4,
  float16: 2,
  half: 2,
  bfloat16: 2,
  float64: 8,
  double: 8,
  f32: 4,
  f16: 2,
  bf16: 2,
};

export function dtypeBytes(dtype: string, fallback?: { weightBytes?: number; parameters: number }): number {
  const known = DTYPE_BYTES[dtype.toLowerCase()];
  if (known) return known;
  if (fallback?.weightBytes && fallback.parameters > 0) return fallback.weightBytes / fallback.parameters;
  return 2;
}

export function estimate(input: EstimateInput): Estimate {
  let targetParams = 0;
  let stored = 0;
  let adapterParams = 0;
  input.shapes.forEach(([out, inn], i) => {
    const n = out * inn;
    targetParams += n;
    stored += storedBits([out, inn], input.bits[i], input.block, input.scaleBits ?? 32);
    adapterParams += input.rank * (out + inn);
  });
  const quantizedBytes = stored / 8;
  const other = Math.max(0, input.parameters - targetParams);
  const otherBytes = other * dtypeBytes(input.dtype, { weightBytes: input.weightBytes, parameters: input.parameters });
  return {
    targetParams,
    avgBits: targetParams > 0 ? stored / targetParams : 0,
    quantizedBytes,
    otherBytes,
    backboneBytes: quantizedBytes + otherBytes,
    adapterParams,
    adapterBytes: adapterParams * 4,
  };
}
