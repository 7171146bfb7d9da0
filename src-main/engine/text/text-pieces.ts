// A .txt file as one continuous text, streamed in pieces of about PIECE_CHARS characters. A
// piece ends only right before a single space that follows a non-space and precedes a letter:
// there, pre-tokenizers (GPT-2/Qwen2 byte-level regexes, Metaspace) start a new word anyway,
// so tokenizing the pieces one by one gives the ids of the whole text.
import { open } from 'node:fs/promises';
import { fsError } from '../io/fs-util';
import type { ReadCounter } from './lines';

const CHUNK_BYTES = 1 << 16;
export const PIECE_CHARS = 1 << 16;
/** Past this, a piece without any safe cut point is cut anyway (one mismatched word). */
const HARD_LIMIT = 1 << 22;

/** Index of the last safe cut in text[from..], or −1. */
function lastSafeCut(text: string, from: number): number {
  for (let i = text.length - 2; i > from; i--) {
    if (text[i] === ' ' && /\S/.test(text[i - 1]) && /\p{L}/u.test(text[i + 1])) return i;
  }
  return -1;
}

export async function* readTextPieces(path: string, counter: ReadCounter): AsyncGenerator<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fsError(e, path, 'read');
  }
  try {
    const buf = new Uint8Array(CHUNK_BYTES);
    const decoder = new TextDecoder('utf-8'); // drops a leading BOM
    let pending = '';
    while (true) {
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, buf.length, null));
      } catch (e) {
        throw fsError(e, path, 'read');
      }
      counter.bytesRead += n;
      pending += n === 0 ? decoder.decode() : decoder.decode(buf.subarray(0, n), { stream: true });
      if (n === 0) break;
      while (pending.length >= PIECE_CHARS) {
        let cut = lastSafeCut(pending, PIECE_CHARS >> 1);
        if (cut < 0) {
          if (pending.length < HARD_LIMIT) break;
          cut = pending.length;
        }
        yield pending.slice(0, cut);
        pending = pending.slice(cut);
      }
    }
    if (pending.length > 0) yield pending;
  } finally {
    await fh.close();
  }
}
