// GGUF reader: the metadata and tensor descriptions of a file (and a tensor's bytes on
// request). Used to check what the exporter wrote; strict and bounded like the safetensors
// reader, since a GGUF file may come from anywhere.
import { UserError } from '../errors';
import { openRegularFile, readFully } from '../io/fs-util';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, VALUE_TYPE, ggmlTensorBytes, ggmlTypeName, type GgmlType, type ScalarType } from './format';

export type GgufReadValue = number | bigint | boolean | string | Array<number | bigint | boolean | string>;

export interface GgufTensorInfo {
  name: string;
  type: GgmlType;
  ne: number[];
  /** Absolute offset of the bytes in the file. */
  offset: number;
  bytes: number;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufReadValue>;
  tensors: Map<string, GgufTensorInfo>;
}

/** Bounds on what a header may declare (far above any real model's). */
const MAX_HEADER_BYTES = 512 * 2 ** 20;
const MAX_COUNT = 10_000_000;

const SCALAR_BY_ID = new Map<number, ScalarType | 'array'>(Object.entries(VALUE_TYPE).map(([k, v]) => [v, k as ScalarType | 'array']));

class Cursor {
  pos = 0;
  private readonly view: DataView;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly path: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.bytes.length) throw new UserError(`${this.path}: GGUF header is truncated or larger than ${MAX_HEADER_BYTES} bytes`);
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UserError(`${this.path}: GGUF value ${v} is too large`);
    return Number(v);
  }
  count(what: string): number {
    const n = this.u64();
    if (n > MAX_COUNT) throw new UserError(`${this.path}: GGUF ${what} count ${n} is over ${MAX_COUNT}`);
    return n;
  }
  string(): string {
    const n = this.u64();
    this.need(n);
    const s = new TextDecoder('utf-8', { fatal: false }).decode(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  scalar(type: ScalarType): number | bigint | boolean | string {
    const sizes: Record<ScalarType, number> = { u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8, string: 0 };
    if (type === 'string') return this.string();
    this.need(sizes[type]);
    const p = this.pos;
    this.pos += sizes[type];
    const v = this.view;
    switch (type) {
      case 'u8':
        return v.getUint8(p);
      case 'i8':
        return v.getInt8(p);
      case 'bool':
        return v.getUint8(p) !== 0;
      case 'u16':
        return v.getUint16(p, true);
      case 'i16':
        return v.getInt16(p, true);
      case 'u32':
        return v.getUint32(p, true);
      case 'i32':
        return v.getInt32(p, true);
      case 'f32':
        return v.getFloat32(p, true);
      case 'u64':
        return v.getBigUint64(p, true);
      case 'i64':
        return v.getBigInt64(p, true);
      case 'f64':
        return v.getFloat64(p, true);
    }
  }
}

export async function readGguf(path: string): Promise<GgufFile> {
  // openRegularFile says itself why a file cannot be read.
  const fh = await openRegularFile(path);
  try {
    const size = (await fh.stat()).size;
    const head = new Uint8Array(Math.min(size, MAX_HEADER_BYTES));
    await readFully(fh, head, 0, path, 'the GGUF header');
    const c = new Cursor(head, path);
    if (size < 24 || c.u32() !== GGUF_MAGIC) throw new UserError(`${path}: not a GGUF file`);
    const version = c.u32();
    if (version !== 3) throw new UserError(`${path}: GGUF version ${version} is not supported (3 is)`);
    const tensorCount = c.count('tensor');
    const kvCount = c.count('metadata');
    const metadata = new Map<string, GgufReadValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = c.string();
      const type = SCALAR_BY_ID.get(c.u32());
      if (type === undefined) throw new UserError(`${path}: metadata ${JSON.stringify(key)} has an unknown value type`);
      if (type === 'array') {
        const item = SCALAR_BY_ID.get(c.u32());
        if (item === undefined || item === 'array') throw new UserError(`${path}: metadata ${JSON.stringify(key)} is an array of an unsupported type`);
        const n = c.count('array');
        const values: Array<number | bigint | boolean | string> = [];
        for (let j = 0; j < n; j++) values.push(c.scalar(item));
        metadata.set(key, values);
      } else {
        metadata.set(key, c.scalar(type));
      }
    }
    const alignment = Number(metadata.get('general.alignment') ?? GGUF_DEFAULT_ALIGNMENT);
    if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) throw new UserError(`${path}: general.alignment ${alignment} is not a power of two`);
    const infos: Array<Omit<GgufTensorInfo, 'offset'> & { rel: number }> = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = c.string();
      const dims = c.u32();
      if (dims < 1 || dims > 4) throw new UserError(`${path}: tensor ${JSON.stringify(name)} has ${dims} dimensions`);
      const ne: number[] = [];
      for (let d = 0; d < dims; d++) ne.push(c.u64());
      const typeId = c.u32();
      const type = ggmlTypeName(typeId);
      if (type === undefined) throw new UserError(`${path}: tensor ${JSON.stringify(name)} has ggml type ${typeId}, which this reader does not know`);
      let bytes: number;
      try {
        bytes = ggmlTensorBytes(type, ne);
      } catch (e) {
        throw new UserError(`${path}: tensor ${JSON.stringify(name)}: ${(e as Error).message}`);
      }
      infos.push({ name, type, ne, bytes, rel: c.u64() });
    }
    const dataStart = Math.ceil(c.pos / alignment) * alignment;
    const tensors = new Map<string, GgufTensorInfo>();
    for (const { rel, ...t } of infos) {
      if (tensors.has(t.name)) throw new UserError(`${path}: tensor ${JSON.stringify(t.name)} appears twice`);
      if (rel % alignment !== 0) throw new UserError(`${path}: tensor ${JSON.stringify(t.name)} is not aligned to ${alignment}`);
      const offset = dataStart + rel;
      if (offset + t.bytes > size) throw new UserError(`${path}: tensor ${JSON.stringify(t.name)} runs past the end of the file`);
      tensors.set(t.name, { ...t, offset });
    }
    return { path, version, metadata, tensors };
  } finally {
    await fh.close();
  }
}

/** A tensor's bytes as stored. */
export async function readGgufTensor(file: GgufFile, name: string): Promise<Uint8Array> {
  const t = file.tensors.get(name);
  if (!t) throw new UserError(`${file.path}: no tensor ${JSON.stringify(name)}`);
  const fh = await openRegularFile(file.path);
  try {
    const out = new Uint8Array(t.bytes);
    await readFully(fh, out, t.offset, file.path, `tensor ${name}`);
    return out;
  } finally {
    await fh.close();
  }
}
