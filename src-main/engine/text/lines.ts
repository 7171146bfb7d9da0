// A text file's lines, read in fixed-size chunks so a large file is never held whole.
import { UserError } from '../errors';
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
  // openRegularFile says itself why a file cannot be read.
  const fh = await openRegularFile(path);
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

/** Longest line a reader takes (characters): a .jsonl record past this is refused, not buffered. */
export const MAX_LINE_CHARS = 64 * 2 ** 20;

/** Yields the lines of a UTF-8 file without their "\n" or "\r\n"; a line over maxChars is an error. */
export async function* readLines(path: string, counter: ReadCounter, maxChars = MAX_LINE_CHARS): AsyncGenerator<string> {
  // The unfinished last line, in pieces, so that a very long line is not re-copied per chunk.
  let pending: string[] = [];
  let pendingChars = 0;
  let lineNo = 0;
  const take = (piece: string): string => {
    pending.push(piece);
    const line = pending.join('');
    pending = [];
    pendingChars = 0;
    lineNo++;
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  };
  const hold = (piece: string) => {
    pendingChars += piece.length;
    if (pendingChars > maxChars) throw new UserError(`${path}: line ${lineNo + 1} is longer than ${maxChars} characters (a .jsonl record must be one line of reasonable size)`);
    pending.push(piece);
  };
  for await (const text of readTextChunks(path, counter)) {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      hold(text.slice(start, nl));
      yield take('');
      start = nl + 1;
    }
    if (start < text.length) hold(text.slice(start));
  }
  if (pending.length > 0) yield take('');
}
