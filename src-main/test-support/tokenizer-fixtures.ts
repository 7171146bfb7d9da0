// Small hand-checkable tokenizer.json documents for the tests: byte-level BPE (GPT-2 / Qwen2
// style) and SentencePiece-style BPE (Llama / Mistral style). Test-only; the ids are laid out so
// that expected encodings can be worked out by hand (see the tests).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** GPT-2's byte → printable-character table: printable Latin-1 bytes map to themselves,
 *  the rest to U+0100 onwards in byte order, so every byte is a visible character. */
export function byteLevelChar(b: number): string {
  const printable = (x: number) => (x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff);
  if (printable(b)) return String.fromCharCode(b);
  let n = 0;
  for (let x = 0; x < b; x++) if (!printable(x)) n++;
  return String.fromCharCode(256 + n);
}

const G = byteLevelChar(0x20); // 'Ġ', the byte-level space

// Qwen2's pre-tokenizer regex: digits split one by one, letters may take one leading non-letter.
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * Byte-level BPE. Ids 0..255 are the bytes (id = byte value), then the merges' results in
 * merge order from 256, then <|endoftext|> (special).
 * `qwen2Split`: pre-tokenize with Qwen2's Split regex + ByteLevel(use_regex false) instead of
 * GPT-2's built-in regex.
 */
export function byteLevelBpe(o: { qwen2Split?: boolean } = {}): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[byteLevelChar(b)] = b;
  const merges: [string, string][] = [
    ['h', 'e'], // 256 he
    ['l', 'l'], // 257 ll
    ['he', 'll'], // 258 hell
    ['hell', 'o'], // 259 hello
    [G, 'w'], // 260 Ġw
    ['o', 'r'], // 261 or
    [`${G}w`, 'or'], // 262 Ġwor
    ['2', '0'], // 263 20
  ];
  let id = 256;
  for (const [a, b] of merges) vocab[a + b] = id++;
  const eos = id; // 264
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: eos, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: o.qwen2Split
      ? {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Split', pattern: { Regex: QWEN2_SPLIT }, behavior: 'Isolated', invert: false },
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
          ],
        }
      : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges, // the newer pair format
    },
  };
}

/**
 * SentencePiece-style BPE: <unk>=0, <s>=1, </s>=2, <0x00>..<0xFF> = 3..258, then the single
 * characters ▁ h e l o w r d = 259..266, then the merges' results from 267 in merge order.
 * `style`: 'metaspace' (Mistral: Metaspace pre-tokenizer) or 'prepend' (Llama 2: Prepend +
 * Replace normalizer, no pre-tokenizer). Both add <s> through TemplateProcessing.
 */
export function sentencePieceBpe(o: { style?: 'metaspace' | 'prepend' } = {}): Record<string, unknown> {
  const style = o.style ?? 'metaspace';
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  let id = 259;
  for (const c of ['▁', 'h', 'e', 'l', 'o', 'w', 'r', 'd']) vocab[c] = id++;
  const merges = ['▁ h', 'l l', '▁h e', '▁he ll', '▁hell o', '▁ w', 'o r', '▁w or']; // the older "a b" format
  for (const m of merges) vocab[m.replace(' ', '')] = id++; // ▁h=267 ll=268 ▁he=269 ▁hell=270 ▁hello=271 ▁w=272 or=273 ▁wor=274
  const special = (i: number, content: string) => ({
    id: i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  // The decoder both styles ship (Mistral too): ▁ → space, bytes → text, drop the first space.
  const spDecoder = [
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 },
  ];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer:
      style === 'prepend'
        ? {
            type: 'Sequence',
            normalizers: [
              { type: 'Prepend', prepend: '▁' },
              { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
            ],
          }
        : null,
    pre_tokenizer: style === 'metaspace' ? { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false } : null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Sequence', decoders: spDecoder },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** Writes tokenizer.json (and tokenizer_config.json when given) into `dir`. */
export async function writeTokenizer(
  dir: string,
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig?: Record<string, unknown>,
): Promise<void> {
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  if (tokenizerConfig) await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
}

/**
 * The review's hostile tokenizer (issue 23): byte-level BPE whose Split pre-tokenizer regex
 * `(\w+\s?)*$` backtracks exponentially on words that end without a match, such as
 * HOSTILE_TEXT (335 bytes), yet passes the loader's short probe.
 */
export function hostileSplitBpe(): Record<string, unknown> {
  return { ...byteLevelBpe(), pre_tokenizer: { type: 'Split', pattern: { Regex: '(\\w+\\s?)*$' }, behavior: 'Isolated', invert: false } };
}

export const HOSTILE_TEXT = 'hello world '.repeat(28).slice(0, 334) + '!';

