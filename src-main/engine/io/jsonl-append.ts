// Appending one record to a JSON-lines file so that a record is there whole or not at all:
// the line goes out in one write; a write that fails part-way (disk full, quota) is cut back
// to where it began; and a tail torn by something we could not clean up after (a kill, a power
// loss, an older version) is repaired before the next record, never glued to it.
import { open, type FileHandle } from 'node:fs/promises';
import { fsError, writeFully } from './fs-util';

/** Bytes read per step when looking back for the last newline. */
const SCAN_BYTES = 1 << 16;
/** A last line longer than this is dropped without trying to parse it (ours are far shorter). */
const MAX_KEPT_LINE = 1 << 20;

export async function appendJsonLine(path: string, record: unknown): Promise<void> {
  const line = new TextEncoder().encode(JSON.stringify(record) + '\n');
  let fh: FileHandle | undefined;
  let size = -1;
  try {
    fh = await open(path, 'a+');
    size = await repairTail(fh, (await fh.stat()).size);
    await writeFully(fh, line);
  } catch (e) {
    // Whatever part of the line reached the file is taken back (best effort: a later append repairs it too).
    if (fh && size >= 0) await fh.truncate(size).catch(() => undefined);
    throw fsError(e, path, 'write');
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Makes the file end with a newline before a record is appended: a last line without one is
 * kept (newline added) when it is a whole JSON value, and dropped otherwise. Returns the size
 * the file has then.
 */
async function repairTail(fh: FileHandle, size: number): Promise<number> {
  if (size === 0 || (await byteAt(fh, size - 1)) === 0x0a) return size;
  const lineStart = await afterLastNewline(fh, size);
  if (size - lineStart <= MAX_KEPT_LINE) {
    const last = new Uint8Array(size - lineStart);
    await fh.read(last, 0, last.length, lineStart);
    if (isWholeJson(last)) {
      await writeFully(fh, new Uint8Array([0x0a]));
      return size + 1;
    }
  }
  await fh.truncate(lineStart);
  return lineStart;
}

async function byteAt(fh: FileHandle, position: number): Promise<number> {
  const b = new Uint8Array(1);
  await fh.read(b, 0, 1, position);
  return b[0];
}

/** The offset just past the file's last newline before `end` (0 when there is none). */
async function afterLastNewline(fh: FileHandle, end: number): Promise<number> {
  const buf = new Uint8Array(SCAN_BYTES);
  while (end > 0) {
    const start = Math.max(0, end - SCAN_BYTES);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}

function isWholeJson(bytes: Uint8Array): boolean {
  try {
    JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    return true;
  } catch {
    return false;
  }
}
