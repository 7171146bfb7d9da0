// A text file's decoded text in fixed-size chunks, so a large file (or one long line) is never
// held whole: what the dataset readers (.txt pieces, .jsonl records) are built on.
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
