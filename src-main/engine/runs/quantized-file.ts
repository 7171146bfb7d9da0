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
    const info = this.matrices[name];
    if (!info) throw new UserError(`${this.file.path}: no quantized matrix "${name}"`);
    const count = info.shape[0] * info.shape[1];
    const quantizer = new BlockQuantizer({ kind: info.quant, bits: info.bits, blockSize: info.block_size });
    const absmax = await readTensorF32(this.file, `${name}.absmax`);
    if (absmax.length !== quantizer.blockCount(count)) throw new UserError(`${this.file.path}: "${name}.absmax" has the wrong length`);
    const codes = unpackCodes(await readTensorRaw(this.file, `${name}.codes`), info.bits, count);
    return quantizer.dequantize({ codes, absmax });
  }
}
