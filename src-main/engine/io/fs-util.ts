// Low-level file helpers that turn the file system's failures into one-line UserErrors.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { UserError } from '../errors';

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'not found',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large (over the file-size limit)',
  EROFS: 'read-only file system',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
};

export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = (e as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** A file-system error as a UserError naming the file; anything else is passed through. */
export function fsError(e: unknown, path: string, action: string): unknown {
  const code = errnoCode(e);
  // Only system errno codes (ENOENT, ...): Node's ERR_* codes are programming errors.
  if (code === undefined || !/^E[A-Z0-9]+$/.test(code)) return e;
  const text =
    code === 'ENOENT' && action === 'write'
      ? 'its folder does not exist'
      : (ERRNO_TEXT[code] ?? (e instanceof Error ? e.message : code));
  return new UserError(`cannot ${action} ${path}: ${text}`);
}

// One read call is capped (Node rejects lengths over 2 GiB), so large tensors go in chunks.
const MAX_CHUNK = 1 << 30;

/** Fills `buf` from `position`; a short read means the file shrank: a UserError. */
export async function readFully(
  fh: FileHandle,
  buf: Uint8Array,
  position: number,
  path: string,
  what: string,
): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const len = Math.min(buf.length - done, MAX_CHUNK);
    let n: number;
    try {
      ({ bytesRead: n } = await fh.read(buf, done, len, position + done));
    } catch (e) {
      throw fsError(e, path, 'read');
    }
    if (n === 0) {
      throw new UserError(
        `${path}: file is truncated: ${what} needs bytes ${position}..${position + buf.length}, ` +
          `the file ends at ${position + done}`,
      );
    }
    done += n;
  }
}

/** Writes all of `buf` at the current position (file writes may be partial). */
export async function writeFully(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const len = Math.min(buf.length - done, MAX_CHUNK);
    const { bytesWritten } = await fh.write(buf, done, len);
    done += bytesWritten;
  }
}

/**
 * Opens a file for reading only if it is a regular file. O_NONBLOCK makes opening a FIFO return
 * at once instead of waiting for a writer (it changes nothing for regular files), and the type
 * is checked on the open descriptor, so a FIFO, device or socket is refused, never read.
 */
export async function openRegularFile(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fsError(e, path, 'read');
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a named pipe' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a regular file';
      throw new UserError(`${path} is ${kind}, not a regular file`);
    }
    return fh;
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e instanceof UserError ? e : fsError(e, path, 'read');
  }
}

