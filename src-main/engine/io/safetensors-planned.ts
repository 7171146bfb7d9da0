// A safetensors file whose tensors are all known (name, dtype, shape) before any data exists:
// the header is written first, then each tensor's bytes go to their place with positional
// writes as they are produced, in any order. Nothing is held in memory or copied through a
// scratch file; the file appears under its name only once every tensor is in (temp + rename).
import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { UserError } from '../errors';
import { fsError } from './fs-util';
import { buildHeader, entryBytes, layoutOrder, type TensorEntry } from './safetensors-write';

export type PlannedTensor = Pick<TensorEntry, 'name' | 'dtype' | 'shape'>;

const MAX_CHUNK = 1 << 30;

export class PlannedSafetensors {
  private readonly slots = new Map<string, { at: number; bytes: number; written: boolean }>();

  private constructor(
    readonly path: string,
    private readonly tmp: string,
    private fh: FileHandle | null,
  ) {}

  static async create(path: string, tensors: readonly PlannedTensor[], metadata: Record<string, string> = {}): Promise<PlannedSafetensors> {
    const ordered = layoutOrder(tensors.map((t) => ({ ...t, data: new Uint8Array(0) })));
    const header = buildHeader(ordered, metadata);
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    let fh: FileHandle;
    try {
      fh = await open(tmp, 'wx');
    } catch (e) {
      throw fsError(e, path, 'write');
    }
    const file = new PlannedSafetensors(path, tmp, fh);
    let at = 8 + header.length;
    for (const t of ordered) {
      const bytes = entryBytes(t);
      file.slots.set(t.name, { at, bytes, written: bytes === 0 });
      at += bytes;
    }
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(header.length), true);
    try {
      await file.writeAt(prefix, 0);
      await file.writeAt(header, 8);
    } catch (e) {
      await file.abort();
      throw e;
    }
    return file;
  }

  /** Writes one tensor's bytes at its place (each tensor exactly once). */
  async write(name: string, data: Uint8Array): Promise<void> {
    const slot = this.slots.get(name);
    if (!slot) throw new Error(`${this.path}: no planned tensor "${name}"`);
    if (slot.written && slot.bytes > 0) throw new Error(`${this.path}: tensor "${name}" written twice`);
    if (data.length !== slot.bytes) throw new Error(`${this.path}: tensor "${name}" has ${data.length} bytes, planned ${slot.bytes}`);
    await this.writeAt(data, slot.at);
    slot.written = true;
  }

  private async writeAt(data: Uint8Array, position: number): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error(`${this.path}: already closed`);
    try {
      for (let done = 0; done < data.length; ) {
        const { bytesWritten } = await fh.write(data, done, Math.min(data.length - done, MAX_CHUNK), position + done);
        done += bytesWritten;
      }
    } catch (e) {
      throw e instanceof UserError ? e : fsError(e, this.path, 'write');
    }
  }

  /** Checks that every tensor is in, syncs, and moves the file into place. */
  async finish(): Promise<void> {
    const missing = [...this.slots].filter(([, s]) => !s.written).map(([n]) => n);
    if (missing.length > 0) {
      await this.abort();
      throw new Error(`${this.path}: ${missing.length} tensors were never written (first: ${missing[0]})`);
    }
    const fh = this.fh;
    this.fh = null;
    try {
      await fh!.sync();
      await fh!.close();
      await rename(this.tmp, this.path);
    } catch (e) {
      await fh!.close().catch(() => undefined);
      await unlink(this.tmp).catch(() => undefined);
      throw fsError(e, this.path, 'write');
    }
  }

  /** Drops the partial file. */
  async abort(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => undefined);
    await unlink(this.tmp).catch(() => undefined);
  }
}
