// quantized.safetensors: the exact Q of every target matrix as `<module>.codes` (U8, packed
// little-endian bit stream, see tensor/packing.ts) and `<module>.absmax` (F32, one per block),
// self-described in the header metadata so that any reader can dequantize it.
import { UserError } from '../errors';
import { isFloatDtype, type FloatDtype } from '../io/dtypes';
import { PlannedSafetensors, type PlannedTensor } from '../io/safetensors-planned';
import { openSafetensors, readTensorF32, readTensorRaw, type SafetensorsFile } from '../io/safetensors-read';
import { bytesOf } from '../io/safetensors-write';
import { BlockQuantizer, type QuantSpec } from '../quant/blockwise';
import { codebookLevels, codebookName } from '../quant/codebook';
import { packedByteLength, unpackCodes } from '../tensor/packing';

export const QUANTIZED_FORMAT = 'loftq-quantized/1';

export interface QuantizedMatrixInfo {
  shape: [number, number];
  bits: number;
  quant: QuantSpec['kind'];
  block_size: number;
  codebook: string;
  /** The dtype the original weight was stored in (what a full backbone is written in). */
  dtype?: FloatDtype;
}

/** A quantized matrix as stored: about bits/32 of its float32 size, plus one float per block. */
export interface CompactMatrix {
  info: QuantizedMatrixInfo;
  packed: Uint8Array;
  absmax: Float32Array;
}

export function matrixInfo(shape: [number, number], spec: QuantSpec, dtype: FloatDtype): QuantizedMatrixInfo {
  return { shape, bits: spec.bits, quant: spec.kind, block_size: spec.blockSize, codebook: codebookName(spec.kind, spec.bits), dtype };
}

/**
 * quantized.safetensors written as matrices finish, in any order: every matrix's shape and
 * bits are known before the first one is computed, so the header comes first and each
 * matrix's codes and absmax go straight to their place.
 */
export class QuantizedFileWriter {
  private constructor(private readonly file: PlannedSafetensors) {}

  static async create(path: string, matrices: Record<string, QuantizedMatrixInfo>): Promise<QuantizedFileWriter> {
    const tensors: PlannedTensor[] = [];
    for (const [name, info] of Object.entries(matrices)) {
      const count = info.shape[0] * info.shape[1];
      tensors.push({ name: `${name}.absmax`, dtype: 'F32', shape: [Math.ceil(count / info.block_size)] });
      tensors.push({ name: `${name}.codes`, dtype: 'U8', shape: [packedByteLength(count, info.bits)] });
    }
    // The float32 levels of every codebook used, so any reader dequantizes without recomputing them.
    const codebooks: Record<string, number[]> = {};
    for (const info of Object.values(matrices)) codebooks[info.codebook] ??= Array.from(codebookLevels(info.quant, info.bits));
    const file = await PlannedSafetensors.create(path, tensors, {
      'loftq.format': QUANTIZED_FORMAT,
      'loftq.matrices': JSON.stringify(matrices),
      'loftq.codebooks': JSON.stringify(codebooks),
    });
    return new QuantizedFileWriter(file);
  }

  async write(name: string, packed: Uint8Array, absmax: Float32Array): Promise<void> {
    await this.file.write(`${name}.absmax`, bytesOf(absmax));
    await this.file.write(`${name}.codes`, packed);
  }

  finish(): Promise<void> {
    return this.file.finish();
  }

  abort(): Promise<void> {
    return this.file.abort();
  }
}

export class QuantizedFile {
  private constructor(
    private readonly file: SafetensorsFile,
    readonly matrices: Record<string, QuantizedMatrixInfo>,
  ) {}

  static async open(path: string): Promise<QuantizedFile> {
    const file = await openSafetensors(path);
    if (file.metadata['loftq.format'] !== QUANTIZED_FORMAT) throw new UserError(`${path}: not a LoftQ quantized file`);
    let matrices: unknown;
    try {
      matrices = JSON.parse(file.metadata['loftq.matrices'] ?? '');
    } catch {
      throw new UserError(`${path}: its loftq.matrices metadata is not valid JSON`);
    }
    if (typeof matrices !== 'object' || matrices === null || Array.isArray(matrices)) throw new UserError(`${path}: its loftq.matrices metadata is not an object`);
    for (const [name, info] of Object.entries(matrices)) checkInfo(path, name, info);
    return new QuantizedFile(file, matrices as Record<string, QuantizedMatrixInfo>);
  }

  names(): string[] {
    return Object.keys(this.matrices);
  }

  /** The dequantized Q of one matrix, row-major [out, in], exactly as the init computed it. */
  async dequantize(name: string): Promise<Float32Array> {
    return this.dequantizeLoaded(await this.load(name));
  }

  /** One matrix in its compact form (packed codes + absmax), checked against its metadata. */
  async load(name: string): Promise<CompactMatrix> {
    const info = this.matrices[name];
    if (!info) throw new UserError(`${this.file.path}: no quantized matrix "${name}"`);
    const count = info.shape[0] * info.shape[1];
    const absmax = await readTensorF32(this.file, `${name}.absmax`);
    if (absmax.length !== Math.ceil(count / info.block_size)) throw new UserError(`${this.file.path}: "${name}.absmax" has the wrong length`);
    const packed = await readTensorRaw(this.file, `${name}.codes`);
    if (packed.length < packedByteLength(count, info.bits)) throw new UserError(`${this.file.path}: "${name}.codes" is too short`);
    return { info, packed, absmax };
  }

  dequantizeLoaded(m: CompactMatrix): Float32Array {
    const count = m.info.shape[0] * m.info.shape[1];
    const quantizer = new BlockQuantizer({ kind: m.info.quant, bits: m.info.bits, blockSize: m.info.block_size });
    return quantizer.dequantize({ codes: unpackCodes(m.packed, m.info.bits, count), absmax: m.absmax });
  }
}

function checkInfo(path: string, name: string, info: unknown): asserts info is QuantizedMatrixInfo {
  const where = `${path}: quantized matrix ${JSON.stringify(name)}`;
  const i = info as Partial<QuantizedMatrixInfo> | null;
  if (typeof i !== 'object' || i === null) throw new UserError(`${where}: its metadata is not an object`);
  const dims = i.shape;
  if (!Array.isArray(dims) || dims.length !== 2 || !dims.every((d) => Number.isSafeInteger(d) && d > 0)) throw new UserError(`${where}: "shape" must be two positive integers`);
  if (!Number.isInteger(i.bits) || !Number.isInteger(i.block_size) || (i.block_size as number) < 1) throw new UserError(`${where}: "bits" and "block_size" must be positive integers`);
  if (i.quant !== 'nf' && i.quant !== 'uniform' && i.quant !== 'ggml') throw new UserError(`${where}: unknown quantizer ${JSON.stringify(i.quant)}`);
  if (i.dtype !== undefined && !isFloatDtype(i.dtype)) throw new UserError(`${where}: unknown dtype ${JSON.stringify(i.dtype)}`);
}
