// A Hugging Face tokenizer.json as llama.cpp's tokenizer.ggml.* metadata. Two families:
//  - byte-level BPE (GPT-2, Llama 3, Qwen2): llama.cpp's "gpt2" model with the merges and a
//    pre-tokenizer name (tokenizer.ggml.pre) that selects the same splitting regex;
//  - SentencePiece-style BPE (Llama 2, Mistral: ▁ for spaces, <0xXX> byte fallback):
//    llama.cpp's "llama" model, which merges by score, so each merged token scores −(its merge
//    rank) and the earliest merge wins as in BPE.
// Rows the model has beyond the tokenizer (a padded embedding) become unused tokens, since
// llama.cpp wants one token per embedding row.
import { join } from 'node:path';
import { UserError } from '../errors';
import { readJsonObject, type JsonObject } from '../io/json-file';
import { loadTokenizer } from '../text/tokenizer';
import { TOKEN_TYPE } from './format';
import { gguf, type GgufValue } from './write';

// The Split regexes of the byte-level tokenizers llama.cpp knows, as tokenizer.json spells them.
const KNOWN_SPLITS: Array<{ pre: string; regex: string }> = [
  { pre: 'llama-bpe', regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
  { pre: 'qwen2', regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
];

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every component of a (possibly Sequence) pre-tokenizer or normalizer. */
function parts(node: unknown, listKey: string): JsonObject[] {
  if (!isObject(node)) return [];
  if (node.type === 'Sequence' && Array.isArray(node[listKey])) return (node[listKey] as unknown[]).flatMap((n) => parts(n, listKey));
  return [node];
}

export interface GgufVocab {
  metadata: Map<string, GgufValue>;
  notes: string[];
}

export async function ggufVocab(modelDir: string, vocabSize: number): Promise<GgufVocab> {
  const path = join(modelDir, 'tokenizer.json');
  // The engine's own loader validates the file and decides BOS/EOS as transformers does.
  const tokenizer = await loadTokenizer(modelDir);
  tokenizer.dispose(); // only its checks and vocabulary size are needed here
  const json = (await readJsonObject(path, { maxBytes: 256 * 2 ** 20 })) as JsonObject;
  const model = json.model as JsonObject;
  const vocab = model.vocab as Record<string, unknown>;
  const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []).filter(isObject);
  if (tokenizer.vocabSize > vocabSize) throw new UserError(`${path}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${vocabSize} embedding rows`);

  const pre = parts(json.pre_tokenizer, 'pretokenizers');
  const norm = parts(json.normalizer, 'normalizers');
  const byteLevel = pre.some((p) => p.type === 'ByteLevel');
  const metaspace = pre.find((p) => p.type === 'Metaspace');
  const prepend = norm.some((n) => n.type === 'Prepend' && n.prepend === '▁');
  const sentencePiece = model.byte_fallback === true || metaspace !== undefined || prepend;
  if (byteLevel === sentencePiece) {
    throw new UserError(`${path}: the tokenizer is ${byteLevel ? 'both byte-level and SentencePiece-style' : 'neither byte-level BPE nor SentencePiece-style BPE'}, which llama.cpp's GGUF tokenizers need`);
  }

  const tokens: string[] = new Array(vocabSize);
  const types = new Int32Array(vocabSize).fill(TOKEN_TYPE.normal);
  for (const [text, id] of Object.entries(vocab)) if (typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < vocabSize) tokens[id] = text;
  for (const t of added) {
    if (typeof t.id !== 'number' || typeof t.content !== 'string' || t.id < 0 || t.id >= vocabSize) continue;
    tokens[t.id] = t.content;
    types[t.id] = t.special === true ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
  // Token texts must be unique to llama.cpp (it maps text → id).
  const seen = new Set(tokens.filter((t) => t !== undefined));
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] !== undefined) continue;
    let pad = `[PAD${i}]`;
    while (seen.has(pad)) pad = `[${pad}]`;
    tokens[i] = pad;
    types[i] = TOKEN_TYPE.unused;
  }

  const merges = (model.merges as unknown[]).map((m) => (Array.isArray(m) ? m.join(' ') : String(m)));
  const md = new Map<string, GgufValue>();
  const notes: string[] = [];
  if (byteLevel) {
    md.set('tokenizer.ggml.model', gguf.str('gpt2'));
    md.set('tokenizer.ggml.pre', gguf.str(byteLevelPre(pre, notes)));
  } else {
    md.set('tokenizer.ggml.model', gguf.str('llama'));
    const scores = new Float32Array(vocabSize);
    merges.forEach((m, rank) => {
      const id = vocab[m.replace(' ', '')];
      if (typeof id === 'number' && id >= 0 && id < vocabSize && scores[id] === 0) scores[id] = -(rank + 1);
    });
    for (let i = 0; i < vocabSize; i++) if (/^<0x[0-9A-F]{2}>$/.test(tokens[i]) && types[i] === TOKEN_TYPE.normal) types[i] = TOKEN_TYPE.byte;
    const unk = typeof model.unk_token === 'string' ? vocab[model.unk_token] : undefined;
    if (typeof unk === 'number') {
      types[unk] = TOKEN_TYPE.unknown;
      md.set('tokenizer.ggml.unknown_token_id', gguf.u32(unk));
    }
    md.set('tokenizer.ggml.scores', gguf.f32s(scores));
    // llama.cpp's SentencePiece path puts ▁ before the text when this is set, as Prepend / Metaspace do.
    const scheme = metaspace ? String(metaspace.prepend_scheme ?? (metaspace.add_prefix_space === false ? 'never' : 'always')) : 'never';
    md.set('tokenizer.ggml.add_space_prefix', gguf.bool(prepend || scheme !== 'never'));
  }
  md.set('tokenizer.ggml.tokens', gguf.strings(tokens));
  md.set('tokenizer.ggml.token_type', gguf.i32s(types));
  if (byteLevel) md.set('tokenizer.ggml.merges', gguf.strings(merges));
  if (tokenizer.bosId !== null) md.set('tokenizer.ggml.bos_token_id', gguf.u32(tokenizer.bosId));
  if (tokenizer.eosId !== null) md.set('tokenizer.ggml.eos_token_id', gguf.u32(tokenizer.eosId));
  md.set('tokenizer.ggml.add_bos_token', gguf.bool(tokenizer.addBosByDefault));
  md.set('tokenizer.ggml.add_eos_token', gguf.bool(false));
  return { metadata: md, notes };
}

/** llama.cpp's name for the splitting a byte-level tokenizer does before BPE. */
function byteLevelPre(pre: JsonObject[], notes: string[]): string {
  const split = pre.find((p) => p.type === 'Split');
  if (!split) {
    const bl = pre.find((p) => p.type === 'ByteLevel');
    if (bl?.use_regex !== false) return 'gpt-2';
    notes.push("the tokenizer's byte-level pre-tokenizer splits nothing; llama.cpp will split text with GPT-2's rule, so its token ids may differ");
    return 'gpt-2';
  }
  const pattern = isObject(split.pattern) ? split.pattern.Regex : undefined;
  const known = KNOWN_SPLITS.find((k) => k.regex === pattern);
  if (known) return known.pre;
  notes.push("the tokenizer splits text with a regex llama.cpp has no name for; GPT-2's rule is written instead, so llama.cpp's token ids may differ from the model's tokenizer");
  return 'gpt-2';
}
