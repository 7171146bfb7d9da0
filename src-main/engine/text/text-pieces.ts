// A .txt file as one continuous text, streamed in pieces of about PIECE_CHARS characters. A
// piece ends only right before a single space that follows a non-space and precedes a letter:
// there, pre-tokenizers (GPT-2/Qwen2 byte-level regexes, Metaspace) start a new word anyway,
// so tokenizing the pieces one by one gives the ids of the whole text.
import { readTextChunks, type ReadCounter } from './lines';

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
  let pending = '';
  for await (const text of readTextChunks(path, counter)) {
    pending += text;
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
}
