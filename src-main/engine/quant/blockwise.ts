// Quantizer specs (kind, bits, block size) and the codebook each gives the device kernels:
// blockwise over the row-major flattened matrix, each block of `blockSize` values storing its
// scale (absmax) and one code per value, the index of the nearest level to value/absmax (ties
// to the lower level). BlockQuantizer is the host quantizer (tensor/host-quantizer.ts) of a spec.
import { UserError } from '../errors';
import type { Codebook } from '../tensor/device';
import { HostQuantizer } from '../tensor/host-quantizer';
import { codebookLevels, GGML_BLOCK_SIZE, quantRule, type QuantKind } from './codebook';

export type { Quantized } from '../tensor/host-quantizer';

export interface QuantSpec {
  kind: QuantKind;
  bits: number;
  blockSize: number;
}

export const MAX_BLOCK_SIZE = 1 << 20;

/** The levels and block size of a quantizer spec, as the device kernels take them. */
export function codebookFor(spec: QuantSpec): Codebook {
  if (!Number.isInteger(spec.blockSize) || spec.blockSize < 1 || spec.blockSize > MAX_BLOCK_SIZE) {
    throw new UserError(`block size must be a positive integer up to ${MAX_BLOCK_SIZE}, got ${spec.blockSize}`);
  }
  if (spec.kind === 'ggml' && spec.blockSize !== GGML_BLOCK_SIZE) {
    throw new UserError(`llama.cpp's q4_0 and q8_0 use blocks of ${GGML_BLOCK_SIZE}, got a block size of ${spec.blockSize}`);
  }
  return { levels: codebookLevels(spec.kind, spec.bits), blockSize: spec.blockSize, rule: quantRule(spec.kind, spec.bits) };
}

/** The host quantizer of a spec (or of a codebook as the device kernels take it). */
export class BlockQuantizer extends HostQuantizer {
  constructor(source: QuantSpec | Codebook) {
    super('levels' in source ? source : codebookFor(source));
  }
}
