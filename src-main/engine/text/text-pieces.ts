// Documents cut into pieces of about PIECE_CHARS characters, so that nothing downstream (the
// tokenizer above all, whose work and memory grow faster than a text's length) ever sees more
// than a bounded piece, however long a file, a .jsonl record or a parquet value is. A piece
// ends only right before a single space that follows a non-space and precedes a letter:
// there, pre-tokenizers (GPT-2/Qwen2 byte-level regexes, Metaspace) start a new word anyway,
// so tokenizing the pieces one by one gives the ids of the whole text. Text with no such place
// for HARD_LIMIT characters (no spaces: one long "word") is cut there anyway, which changes the
// ids of that one word only.

/** A piece of a document; `first` marks the first piece of a new document. */
export interface TextPiece {
  text: string;
  first: boolean;
}

export const PIECE_CHARS = 1 << 16;
/** Past this, a piece without any safe cut point is cut anyway (measured: a 128 Ki-character
 *  word takes the tokenizer ~0.3 s, a 1 Mi-character one 3.5 s and 300 MB). */
export const HARD_LIMIT = PIECE_CHARS * 2;

/** Index of the last safe cut in text(from, to), or −1. */
function lastSafeCut(text: string, from: number, to: number): number {
  for (let i = to - 1; i > from; i--) {
    if (text.charCodeAt(i) === 0x20 && /\S/.test(text[i - 1]) && /\p{L}/u.test(text[i + 1])) return i;
  }
  return -1;
}

/**
 * Cuts each document of a fragment stream (fragments of any size; `first` starts a document)
 * into pieces. A document's pieces concatenate to the document.
 */
export async function* cutPieces(fragments: AsyncIterable<TextPiece>): AsyncGenerator<TextPiece> {
  let pending = '';
  let first = true;
  // How far pending has been searched for a safe cut already (a long word is scanned once).
  let searched = 0;
  for await (const f of fragments) {
    if (f.first && pending.length > 0) {
      yield { text: pending, first };
      pending = '';
      searched = 0;
    }
    if (f.first) first = true;
    pending += f.text;
    while (pending.length >= PIECE_CHARS) {
      // A cut needs the character after it, so the last character is never a cut.
      const to = Math.min(pending.length - 1, HARD_LIMIT);
      let cut = lastSafeCut(pending, Math.max(PIECE_CHARS >> 1, searched - 1), to);
      if (cut < 0) {
        if (pending.length < HARD_LIMIT) {
          searched = to;
          break;
        }
        cut = HARD_LIMIT;
      }
      yield { text: pending.slice(0, cut), first };
      first = false;
      pending = pending.slice(cut);
      searched = 0;
    }
  }
  if (pending.length > 0) yield { text: pending, first };
}
