// Safetensors reader: parses only the length prefix and the JSON header, validates it
// strictly (files come from anywhere), then reads single tensors with positional reads so
// that a model is never held in memory whole.
import { UserError } from '../errors';
import {
  DTYPE_BYTES,
  DTYPES,
  HOST_LITTLE_ENDIAN,
  floatBytesToF32,
  isDtype,
  isFloatDtype,
  type Dtype,
} from './dtypes';
import { openRegularFile, readFully } from './fs-util';
import { parseJsonText } from './json-file';

export { findNonFinite } from './dtypes';

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute file offsets: the tensor's bytes are [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  path: string;
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
  /** File size when opened, and where the data section starts. */
  size: number;
  dataStart: number;
}

export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const fh = await openRegularFile(path);
  let header: Uint8Array;
  let size: number;
  try {
    size = (await fh.stat()).size;
    if (size < 8) {
      throw new UserError(`${path}: not a safetensors file (${size} bytes, shorter than the 8-byte header length)`);
    }
    const prefix = new Uint8Array(8);
    await readFully(fh, prefix, 0, path, 'the header length');
    const len = new DataView(prefix.buffer).getBigUint64(0, true);
    if (len > BigInt(size - 8)) {
      throw new UserError(`${path}: not a safetensors file (header length ${len} exceeds the file size ${size})`);
    }
    if (len > BigInt(MAX_HEADER_BYTES)) {
      throw new UserError(`${path}: header length ${len} is over the ${MAX_HEADER_BYTES}-byte limit`);
    }
    header = new Uint8Array(Number(len));
    await readFully(fh, header, 8, path, 'the header');
  } finally {
    await fh.close();
  }
  return parseHeader(path, header, size);
}

/** Validates a header (the bytes after the length prefix) of a file of `size` bytes. */
export function parseHeader(path: string, header: Uint8Array, size: number): SafetensorsFile {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(header);
  } catch {
    throw new UserError(`${path}: safetensors header is not valid UTF-8`);
  }
  // A header is three levels deep; anything much deeper is not one (and is not parsed).
  const json = parseJsonText(text, `${path}: safetensors header`, 16);
  if (!isPlainObject(json)) throw new UserError(`${path}: safetensors header is not a JSON object`);

  const dataStart = 8 + header.length;
  const dataLen = size - dataStart;
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const name in json) {
    if (name === '__metadata__') metadata = parseMetadata(path, json[name]);
    else tensors.set(name, parseEntry(path, name, json[name], dataStart, dataLen));
  }
  checkOverlaps(path, [...tensors.values()]);
  return { path, metadata, tensors, size, dataStart };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseMetadata(path: string, entry: unknown): Record<string, string> {
  if (!isPlainObject(entry)) throw new UserError(`${path}: "__metadata__" must be an object of strings`);
  // Checked in place, not copied: JSON.parse made a fresh object, and a hostile header can hold
  // millions of entries.
  for (const k in entry) {
    if (typeof entry[k] !== 'string') {
      throw new UserError(`${path}: "__metadata__" entry ${JSON.stringify(k)} must be a string`);
    }
  }
  return entry as Record<string, string>;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** One tensor's entry; its offsets come back absolute (from the start of the file). */
function parseEntry(path: string, name: string, entry: unknown, dataStart: number, dataLen: number): TensorInfo {
  // Names are quoted as JSON so that odd characters cannot break the one-line message.
  const where = `${path}: tensor ${JSON.stringify(name)}`;
  if (!isPlainObject(entry)) throw new UserError(`${where}: entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (dtype === undefined) throw new UserError(`${where}: missing "dtype"`);
  if (shape === undefined) throw new UserError(`${where}: missing "shape"`);
  if (offsets === undefined) throw new UserError(`${where}: missing "data_offsets"`);
  if (typeof dtype !== 'string') throw new UserError(`${where}: "dtype" must be a string`);
  if (!isDtype(dtype)) {
    throw new UserError(`${where}: unsupported dtype ${JSON.stringify(dtype)} (supported: ${DTYPES.join(', ')})`);
  }
  if (!Array.isArray(shape)) throw new UserError(`${where}: "shape" must be an array`);
  if (!shape.every(isNonNegInt)) {
    throw new UserError(`${where}: "shape" ${JSON.stringify(shape)} must hold non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
    throw new UserError(`${where}: "data_offsets" must be two non-negative integers [begin, end]`);
  }
  const [begin, end] = offsets as number[];
  if (end < begin) throw new UserError(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataLen) {
    throw new UserError(
      `${where}: data_offsets [${begin}, ${end}] run past the data section (${dataLen} bytes; file truncated?)`,
    );
  }
  // Every partial product stays below dataLen, so no precision is lost on huge shapes.
  let bytes = DTYPE_BYTES[dtype];
  for (const d of shape as number[]) {
    bytes *= d;
    if (bytes > dataLen) break;
  }
  if (bytes !== end - begin) {
    throw new UserError(
      `${where}: shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${bytes} bytes ` +
        `but data_offsets hold ${end - begin}`,
    );
  }
  return { name, dtype, shape: shape as number[], begin: begin + dataStart, end: end + dataStart };
}

function checkOverlaps(path: string, list: TensorInfo[]): void {
  // Empty tensors occupy no bytes and cannot overlap anything.
  const sorted = list.filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.begin < prev.end) {
      throw new UserError(
        `${path}: tensors ${JSON.stringify(prev.name)} and ${JSON.stringify(cur.name)} overlap in the data section`,
      );
    }
  }
}

function getInfo(file: SafetensorsFile, name: string): TensorInfo {
  const info = file.tensors.get(name);
  if (!info) throw new UserError(`${file.path}: no tensor named ${JSON.stringify(name)}`);
  return info;
}

/** The tensor's bytes as stored (little endian), in a fresh, 8-byte-aligned buffer. */
export async function readTensorRaw(file: SafetensorsFile, name: string): Promise<Uint8Array> {
  const info = getInfo(file, name);
  const buf = new Uint8Array(info.end - info.begin);
  if (buf.length === 0) return buf;
  const fh = await openRegularFile(file.path);
  try {
    await readFully(fh, buf, info.begin, file.path, `tensor ${JSON.stringify(name)}`);
  } finally {
    await fh.close();
  }
  return buf;
}

/** Reads a floating-point tensor (F32, F16, BF16 or F64) as float32. */
export async function readTensorF32(file: SafetensorsFile, name: string): Promise<Float32Array> {
  const info = getInfo(file, name);
  if (!isFloatDtype(info.dtype)) {
    throw new UserError(
      `${file.path}: tensor ${JSON.stringify(name)} has dtype ${info.dtype}, not a floating-point type`,
    );
  }
  const raw = await readTensorRaw(file, name);
  // The raw buffer is ours and aligned: F32 needs no copy.
  if (info.dtype === 'F32' && HOST_LITTLE_ENDIAN) return new Float32Array(raw.buffer, 0, raw.length / 4);
  return floatBytesToF32(raw, info.dtype);
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
