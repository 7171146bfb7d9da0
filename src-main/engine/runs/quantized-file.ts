// quantized.safetensors: the exact Q of every target matrix as `<module>.codes` (U8, packed
// little-endian bit stream, see quant/packing) and `<module>.absmax` (F32, one per block),
// self-described in the header metadata so that any reader can dequantize it.
import { UserError } from '../errors';
import { openSafetensors, readTensorF32, readTensorRaw, type SafetensorsFile } from '../io/safetensors-read';
import { bytesOf, writeSafetensors, type TensorEntry } from '../io/safetensors-write';
import { BlockQuantizer, type QuantSpec } from '../quant/blockwise';
import { codebookName } from '../quant/codebook';
import { packedByteLength, unpackCodes } from '../quant/packing';

export const QUANTIZED_FORMAT = 'loftq-quantized/1';

export interface QuantizedMatrixInfo {
  shape: [number, number];
  bits: number;
  quant: QuantSpec['kind'];
  block_size: number;
  codebook: string;
}

/** A quantized matrix as stored: about bits/32 of its float32 size, plus one float per block. */
export interface CompactMatrix {
  info: QuantizedMatrixInfo;
  packed: Uint8Array;
  absmax: Float32Array;
}

export interface QuantizedEntry {
  name: string;
  info: QuantizedMatrixInfo;
  absmax: Float32Array;
  /** The packed codes, produced when the writer reaches them. */
  codes: () => Promise<Uint8Array>;
}

export function matrixInfo(shape: [number, number], spec: QuantSpec): QuantizedMatrixInfo {
  return { shape, bits: spec.bits, quant: spec.kind, block_size: spec.blockSize, codebook: codebookName(spec.kind, spec.bits) };
}

export async function writeQuantizedFile(path: string, entries: QuantizedEntry[]): Promise<void> {
  const tensors: TensorEntry[] = [];
  const matrices: Record<string, QuantizedMatrixInfo> = {};
  for (const e of entries) {
    const count = e.info.shape[0] * e.info.shape[1];
    matrices[e.name] = e.info;
    tensors.push({ name: `${e.name}.absmax`, dtype: 'F32', shape: [e.absmax.length], data: bytesOf(e.absmax) });
    tensors.push({ name: `${e.name}.codes`, dtype: 'U8', shape: [packedByteLength(count, e.info.bits)], data: e.codes });
  }
  await writeSafetensors(path, tensors, { 'loftq.format': QUANTIZED_FORMAT, 'loftq.matrices': JSON.stringify(matrices) });
}

export class QuantizedFile {
  private constructor(
    private readonly file: SafetensorsFile,
    readonly matrices: Record<string, QuantizedMatrixInfo>,
  ) {}

  static async open(path: string): Promise<QuantizedFile> {
    const file = await openSafetensors(path);
    if (file.metadata['loftq.format'] !== QUANTIZED_FORMAT) throw new UserError(`${path}: not a LoftQ quantized file`);
    let matrices: Record<string, QuantizedMatrixInfo>;
    try {
      matrices = JSON.parse(file.metadata['loftq.matrices'] ?? '');
    } catch {
      throw new UserError(`${path}: its loftq.matrices metadata is not valid JSON`);
    }
    return new QuantizedFile(file, matrices);
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
