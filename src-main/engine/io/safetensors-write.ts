// Streaming safetensors writer. The header is computed from shapes alone, so tensors can be
// produced one at a time (lazy entries) and written straight out: memory stays at one tensor.
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from './atomic-write';
import { DTYPE_BYTES, isDtype, type Dtype } from './dtypes';
import { fsError, writeFully } from './fs-util';

export { bytesOf, encodeF32, f32ToBf16, f32ToF16, f32ToF64Bytes, f32ToLeBytes } from './dtypes';

export interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** The little-endian bytes, or a function producing them when the writer gets there. */
  data: Uint8Array | (() => Promise<Uint8Array>);
}

export function entryBytes(e: Pick<TensorEntry, 'dtype' | 'shape'>): number {
  return e.shape.reduce((a, b) => a * b, DTYPE_BYTES[e.dtype]);
}

function checkEntries(entries: readonly TensorEntry[]): void {
  const seen = new Set<string>();
  for (const e of entries) {
    if (typeof e.name !== 'string' || e.name === '' || e.name === '__metadata__') {
      throw new Error(`invalid tensor name ${JSON.stringify(e.name)}`);
    }
    if (seen.has(e.name)) throw new Error(`duplicate tensor name "${e.name}"`);
    seen.add(e.name);
    if (!isDtype(e.dtype)) throw new Error(`tensor "${e.name}": unknown dtype ${String(e.dtype)}`);
    if (!e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`tensor "${e.name}": invalid shape [${e.shape.join(', ')}]`);
    }
    if (e.data instanceof Uint8Array) checkData(e, e.data);
  }
}

function checkData(e: TensorEntry, data: Uint8Array): void {
  const want = entryBytes(e);
  if (data.length !== want) {
    throw new Error(`tensor "${e.name}": ${data.length} bytes given, shape and dtype need ${want}`);
  }
}

// Largest element first (stable): with an 8-aligned data section every tensor then starts
// at a multiple of its element size, which zero-copy readers (mmap, numpy) rely on.
export function layoutOrder<T extends Pick<TensorEntry, 'dtype'>>(entries: readonly T[]): T[] {
  return entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => DTYPE_BYTES[b.e.dtype] - DTYPE_BYTES[a.e.dtype] || a.i - b.i)
    .map(({ e }) => e);
}

/** The header bytes (JSON padded with spaces to a multiple of 8) for entries in this order. */
export function buildHeader(ordered: readonly TensorEntry[], metadata: Record<string, string> = {}): Uint8Array {
  // Hugging Face transformers refuses a file whose metadata lacks a known "format".
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  for (const e of ordered) {
    const n = entryBytes(e);
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  return padded;
}

/** Writes one safetensors file atomically, producing lazy tensors one at a time. */
export async function writeSafetensors(
  path: string,
  entries: readonly TensorEntry[],
  metadata: Record<string, string> = {},
): Promise<void> {
  checkEntries(entries);
  const ordered = layoutOrder(entries);
  const header = buildHeader(ordered, metadata);
  await writeFileAtomic(path, async (fh) => {
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(header.length), true);
    await writeFully(fh, prefix);
    await writeFully(fh, header);
    for (const e of ordered) {
      const data = e.data instanceof Uint8Array ? e.data : await e.data();
      checkData(e, data);
      await writeFully(fh, data);
    }
  });
}

export interface ShardedWriteResult {
  /** Paths of the safetensors files written, in shard order. */
  files: string[];
  /** Path of the index JSON, or null when everything fit in one file. */
  index: string | null;
}

/** Hugging Face's default max_shard_size ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5e9;

/**
 * Writes `<base>.safetensors` when the tensors fit in `maxShardBytes`, else shards
 * `<base>-00001-of-0000N.safetensors` plus `<base>.safetensors.index.json`, as Hugging Face
 * does. Shards are filled greedily in entry order; a tensor larger than the limit gets a
 * shard to itself. Files of an earlier write in the other layout are removed, since loaders
 * prefer `<base>.safetensors` over an index.
 */
export async function writeShardedSafetensors(
  dir: string,
  baseName = 'model',
  entries: readonly TensorEntry[],
  metadata: Record<string, string> = {},
  maxShardBytes = DEFAULT_MAX_SHARD_BYTES,
): Promise<ShardedWriteResult> {
  checkEntries(entries);
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw fsError(e, dir, 'create folder');
  }
  const shards: TensorEntry[][] = [];
  let current: TensorEntry[] = [];
  let currentBytes = 0;
  let total = 0;
  for (const e of entries) {
    const n = entryBytes(e);
    total += n;
    if (current.length > 0 && currentBytes + n > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(e);
    currentBytes += n;
  }
  shards.push(current);

  const single = `${baseName}.safetensors`;
  const indexName = `${baseName}.safetensors.index.json`;
  if (shards.length === 1) {
    const path = join(dir, single);
    await writeSafetensors(path, entries, metadata);
    await removeStale(dir, baseName, new Set([single]));
    return { files: [path], index: null };
  }

  const count = String(shards.length).padStart(5, '0');
  const names = shards.map((_, i) => `${baseName}-${String(i + 1).padStart(5, '0')}-of-${count}.safetensors`);
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards.length; i++) {
    await writeSafetensors(join(dir, names[i]), shards[i], metadata);
    for (const e of shards[i]) weightMap[e.name] = names[i];
  }
  const indexPath = join(dir, indexName);
  await writeJsonAtomic(indexPath, { metadata: { total_size: total }, weight_map: weightMap });
  await removeStale(dir, baseName, new Set([...names, indexName]));
  return { files: names.map((n) => join(dir, n)), index: indexPath };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function removeStale(dir: string, baseName: string, keep: Set<string>): Promise<void> {
  const b = escapeRegExp(baseName);
  const ours = new RegExp(`^${b}(\\.safetensors|\\.safetensors\\.index\\.json|-\\d{5}-of-\\d{5}\\.safetensors)$`);
  for (const name of await readdir(dir)) {
    if (ours.test(name) && !keep.has(name)) await unlink(join(dir, name)).catch(() => undefined);
  }
}
