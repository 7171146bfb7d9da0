// A text file's lines, read in fixed-size chunks so a large file is never held whole.
import { fsError, openRegularFile } from '../io/fs-util';

const CHUNK_BYTES = 1 << 16;

/** Counts bytes taken from disk (for progress, and for tests that check streaming). */
export interface ReadCounter {
  bytesRead: number;
}

/**
 * The decoded text of a UTF-8 file in chunks of about CHUNK_BYTES (a leading BOM is dropped,
 * invalid bytes become U+FFFD, a character split across reads is kept whole). Closes the
 * file when the consumer stops early.
 */
export async function* readTextChunks(path: string, counter: ReadCounter): AsyncGenerator<string> {
  let fh;
  try {
    fh = await openRegularFile(path);
  } catch (e) {
    throw fsError(e, path, 'read');
  }
  try {
    const buf = new Uint8Array(CHUNK_BYTES);
    const decoder = new TextDecoder('utf-8');
    while (true) {
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, buf.length, null));
      } catch (e) {
        throw fsError(e, path, 'read');
      }
      counter.bytesRead += n;
      const text = n === 0 ? decoder.decode() : decoder.decode(buf.subarray(0, n), { stream: true });
      if (text.length > 0) yield text;
      if (n === 0) return;
    }
  } finally {
    await fh.close();
  }
}

/** Yields the lines of a UTF-8 file without their "\n" or "\r\n". */
export async function* readLines(path: string, counter: ReadCounter): AsyncGenerator<string> {
  // The unfinished last line, in pieces, so that a very long line is not re-copied per chunk.
  let pending: string[] = [];
  const take = (piece: string): string => {
    pending.push(piece);
    const line = pending.join('');
    pending = [];
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  };
  for await (const text of readTextChunks(path, counter)) {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      yield take(text.slice(start, nl));
      start = nl + 1;
    }
    if (start < text.length) pending.push(text.slice(start));
  }
  if (pending.length > 0) yield take('');
}
