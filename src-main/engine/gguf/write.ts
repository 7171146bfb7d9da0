// Streaming GGUF writer: the header (metadata and tensor descriptions) is laid out from
// shapes alone, then tensors are produced one at a time and written at their offsets, so
// memory stays at one tensor. The file is written atomically.
import { writeFileAtomic } from '../io/atomic-write';
import { writeFully } from '../io/fs-util';
import { GGML_TYPE, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, VALUE_TYPE, ggmlTensorBytes, type GgmlType, type ScalarType } from './format';

export type GgufScalar = { type: ScalarType; value: number | bigint | boolean | string };
export type GgufArray = { type: 'array'; itemType: ScalarType; values: ArrayLike<number | bigint | boolean | string> };
export type GgufValue = GgufScalar | GgufArray;

/** Typed metadata values. */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  u64: (value: number): GgufValue => ({ type: 'u64', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  strings: (values: readonly string[]): GgufValue => ({ type: 'array', itemType: 'string', values }),
  f32s: (values: ArrayLike<number>): GgufValue => ({ type: 'array', itemType: 'f32', values }),
  i32s: (values: ArrayLike<number>): GgufValue => ({ type: 'array', itemType: 'i32', values }),
};

export interface GgufTensor {
  name: string;
  type: GgmlType;
  /** ggml dimensions, fastest first ([in, out] for a weight matrix [out, in]). */
  ne: number[];
  /** The tensor's bytes in the type's layout, or a function producing them when the writer gets there. */
  data: Uint8Array | (() => Promise<Uint8Array>);
}

/** A little-endian byte builder that grows as needed. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number | bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  scalar(type: ScalarType, v: number | bigint | boolean | string): void {
    const n = typeof v === 'boolean' ? Number(v) : v;
    switch (type) {
      case 'string': {
        const bytes = new TextEncoder().encode(String(v));
        this.u64(bytes.length);
        this.bytes(bytes);
        return;
      }
      case 'u8':
      case 'bool':
        return this.u8(Number(n));
      case 'i8':
        this.reserve(1);
        this.view.setInt8(this.length, Number(n));
        this.length += 1;
        return;
      case 'u16':
      case 'i16':
        this.reserve(2);
        if (type === 'u16') this.view.setUint16(this.length, Number(n), true);
        else this.view.setInt16(this.length, Number(n), true);
        this.length += 2;
        return;
      case 'u32':
        return this.u32(Number(n));
      case 'i32':
        this.reserve(4);
        this.view.setInt32(this.length, Number(n), true);
        this.length += 4;
        return;
      case 'f32':
        this.reserve(4);
        this.view.setFloat32(this.length, Number(n), true);
        this.length += 4;
        return;
      case 'u64':
        return this.u64(BigInt(n as number | bigint));
      case 'i64':
        this.reserve(8);
        this.view.setBigInt64(this.length, BigInt(n as number | bigint), true);
        this.length += 8;
        return;
      case 'f64':
        this.reserve(8);
        this.view.setFloat64(this.length, Number(n), true);
        this.length += 8;
        return;
    }
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** The header (padded to the alignment) and each tensor's offset within the data section. */
export function layoutGguf(metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensor[], alignment = GGUF_DEFAULT_ALIGNMENT): { header: Uint8Array; offsets: number[]; sizes: number[] } {
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(tensors.length);
  sink.u64(metadata.size);
  for (const [key, value] of metadata) {
    sink.scalar('string', key);
    sink.u32(VALUE_TYPE[value.type]);
    if (value.type === 'array') {
      sink.u32(VALUE_TYPE[value.itemType]);
      sink.u64(value.values.length);
      for (let i = 0; i < value.values.length; i++) sink.scalar(value.itemType, value.values[i]);
    } else {
      sink.scalar(value.type, value.value);
    }
  }
  const seen = new Set<string>();
  const offsets: number[] = [];
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (seen.has(t.name)) throw new Error(`duplicate GGUF tensor name "${t.name}"`);
    seen.add(t.name);
    const size = ggmlTensorBytes(t.type, t.ne);
    sink.scalar('string', t.name);
    sink.u32(t.ne.length);
    for (const d of t.ne) sink.u64(d);
    sink.u32(GGML_TYPE[t.type]);
    sink.u64(offset);
    offsets.push(offset);
    sizes.push(size);
    offset = align(offset + size, alignment);
  }
  sink.pad(alignment);
  return { header: sink.result(), offsets, sizes };
}

/** Writes a GGUF file atomically; lazy tensors are produced one at a time, in order. */
export async function writeGguf(path: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensor[], onTensor?: (index: number) => void): Promise<void> {
  const alignment = GGUF_DEFAULT_ALIGNMENT;
  const { header, sizes } = layoutGguf(metadata, tensors, alignment);
  await writeFileAtomic(path, async (fh) => {
    await writeFully(fh, header);
    const zeros = new Uint8Array(alignment);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const data = t.data instanceof Uint8Array ? t.data : await t.data();
      if (data.length !== sizes[i]) throw new Error(`GGUF tensor "${t.name}": ${data.length} bytes given, ${t.type} [${t.ne.join(', ')}] needs ${sizes[i]}`);
      await writeFully(fh, data);
      const pad = (alignment - (data.length % alignment)) % alignment;
      // The last one too: readers that load the data section whole expect every tensor padded.
      if (pad > 0) await writeFully(fh, zeros.subarray(0, pad));
      onTensor?.(i);
    }
  });
}
