// A model's tokenizer from its Hugging Face tokenizer.json (+ tokenizer_config.json), run by
// @huggingface/tokenizers. Special tokens (BOS) are added here, not by the library's
// post-processor, so that "add BOS or not" follows transformers' rules in one place and no
// template-added EOS sneaks into calibration text.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../errors';
import { readJsonObject } from '../io/json-file';

export interface TextTokenizer {
  /** The tokenizer.json this came from (for messages). */
  readonly path: string;
  /** Largest token id + 1 (added tokens included). */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Whether encode() prepends BOS when not told otherwise. */
  readonly addBosByDefault: boolean;
  /**
   * tokenizer_config.json's model_max_length: the longest input the model is meant for (often
   * the length it was trained on), or null when absent or transformers' "no limit" sentinel.
   */
  readonly modelMaxLength: number | null;
  encode(text: string, opts?: { addBos?: boolean }): Int32Array;
  /**
   * Encodes a piece that continues a text whose earlier part was encoded separately (cut
   * before a space and a letter, see text-pieces.ts), so that concatenated pieces give the
   * whole text's ids: with a Prepend("▁") normalizer the piece's leading space is dropped,
   * because the normalizer's prepended ▁ stands for it.
   */
  encodeContinuation(text: string): Int32Array;
  /** Ids outside the vocabulary (e.g. a model's padded embedding rows) decode to nothing;
   *  special tokens (BOS, EOS, ...) are written out unless skipSpecialTokens. */
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string;
}

// Only BPE is accepted: every supported architecture (llama, mistral, qwen2) ships a BPE
// tokenizer.json, and the library's fallbacks would silently treat other models oddly.
const SUPPORTED_MODELS = ['BPE'];
// Used only when neither tokenizer_config.json nor the post-processor names the token.
const COMMON_BOS = ['<s>', '<|begin_of_text|>', '<bos>'];
const COMMON_EOS = ['</s>', '<|endoftext|>', '<|end_of_text|>', '<eos>'];

// Letters, digits, punctuation, spaces and a non-ASCII letter: every stage of the pipeline runs.
const PROBE_TEXT = 'Hello, world! 123  é\n';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

// tokenizer.json of a large vocabulary runs to tens of MB; 256 MiB bounds what is read.
const readJson = (path: string, optional: boolean): Promise<Json | null> => readJsonObject(path, { optional, maxBytes: 256 * 2 ** 20 });

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export async function loadTokenizer(modelDir: string): Promise<TextTokenizer> {
  const path = join(modelDir, 'tokenizer.json');
  const configPath = join(modelDir, 'tokenizer_config.json');
  const json = await readJson(path, true);
  if (json === null) {
    const spOnly = await exists(join(modelDir, 'tokenizer.model'));
    throw new UserError(
      `${modelDir} has no tokenizer.json` +
        (spOnly ? ' (it has only tokenizer.model, which is not supported: convert it with transformers first)' : ''),
    );
  }
  const config = (await readJson(configPath, true)) ?? {};

  const model = json.model;
  if (!isObject(model)) throw new UserError(`${path}: missing "model"`);
  if (typeof model.type !== 'string' || !SUPPORTED_MODELS.includes(model.type)) {
    throw new UserError(
      `${path}: tokenizer model type ${JSON.stringify(model.type ?? null)} is not supported (supported: ${SUPPORTED_MODELS.join(', ')})`,
    );
  }
  if (!isObject(model.vocab) || !Array.isArray(model.merges)) {
    throw new UserError(`${path}: the BPE model needs "vocab" (an object) and "merges" (a list)`);
  }
  const addedTokens = Array.isArray(json.added_tokens) ? json.added_tokens : [];

  let maxId = -1;
  for (const id of Object.values(model.vocab)) if (typeof id === 'number' && id > maxId) maxId = id;
  for (const t of addedTokens) if (isObject(t) && typeof t.id === 'number' && t.id > maxId) maxId = t.id;
  if (maxId < 0) throw new UserError(`${path}: the vocabulary is empty`);

  let lib: Tokenizer;
  try {
    // The library requires these keys to exist (null is fine) and reads added_tokens unguarded.
    const full = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json, added_tokens: addedTokens };
    lib = new Tokenizer(full, config);
  } catch (e) {
    throw new UserError(`${path}: cannot build the tokenizer: ${(e as Error).message}`);
  }

  const idOf = (token: string, from: string): number => {
    const id = lib.token_to_id(token);
    if (id === undefined) throw new UserError(`${from}: token ${JSON.stringify(token)} is not in ${path}`);
    return id;
  };
  const firstKnown = (names: string[]): number | null => {
    for (const n of names) {
      const id = lib.token_to_id(n);
      if (id !== undefined) return id;
    }
    return null;
  };

  // BOS/EOS: tokenizer_config.json names them (a string, an AddedToken-like object, or null);
  // without that, the post-processor's template, then common names.
  const templateBos = templateFirstSpecial(json.post_processor);
  const configured = (key: string): string | null | undefined => {
    if (!(key in config)) return undefined;
    const v = config[key];
    if (v === null) return null;
    if (typeof v === 'string') return v;
    if (isObject(v) && typeof v.content === 'string') return v.content;
    throw new UserError(`${configPath}: "${key}" must be a token string, an object with "content", or null`);
  };
  const bosName = configured('bos_token');
  const eosName = configured('eos_token');
  let bosId: number | null;
  if (bosName === undefined) bosId = templateBos !== null ? idOf(templateBos, path) : firstKnown(COMMON_BOS);
  else bosId = bosName === null ? null : idOf(bosName, configPath);
  let eosId: number | null;
  if (eosName === undefined) eosId = firstKnown(COMMON_EOS);
  else eosId = eosName === null ? null : idOf(eosName, configPath);

  // transformers: add_bos_token when the config says so; otherwise the fast tokenizer's
  // post-processor decides (a template starting with a special token).
  let addBosByDefault: boolean;
  if (typeof config.add_bos_token === 'boolean') addBosByDefault = config.add_bos_token;
  else if (config.add_bos_token !== undefined && config.add_bos_token !== null) {
    throw new UserError(`${configPath}: "add_bos_token" must be true or false`);
  } else addBosByDefault = templateBos !== null && bosId !== null; // an explicit null bos_token wins
  if (addBosByDefault && bosId === null) {
    throw new UserError(`${configPath}: add_bos_token is true but there is no bos_token`);
  }

  const prepends = hasPrependNormalizer(json.normalizer);
  const maxLength = config.model_max_length;
  // transformers writes int(1e30) when a tokenizer has no limit; anything that large is "none".
  const modelMaxLength = typeof maxLength === 'number' && Number.isSafeInteger(maxLength) && maxLength > 0 && maxLength < 1e9 ? maxLength : null;

  // Faithful decoding: the library would otherwise tidy spaces (" ." → ".") unless told not to.
  const cleanUp = config.clean_up_tokenization_spaces === true;
  const vocabSize = maxId + 1;

  const tokenizer: TextTokenizer = {
    path,
    vocabSize,
    bosId,
    eosId,
    addBosByDefault,
    modelMaxLength,
    encode(text, opts = {}) {
      const addBos = opts.addBos ?? addBosByDefault;
      if (addBos && bosId === null) throw new UserError(`${path}: this tokenizer has no BOS token`);
      const ids = libraryCall(path, () => lib.encode(text, { add_special_tokens: false }).ids);
      const out = new Int32Array(ids.length + (addBos ? 1 : 0));
      let n = 0;
      if (addBos) out[n++] = bosId as number;
      // An unknown piece with no unk token comes back undefined; drop it like the Rust crate does.
      for (const id of ids) if (id !== undefined) out[n++] = id;
      return n === out.length ? out : out.slice(0, n);
    },
    encodeContinuation(text) {
      return tokenizer.encode(prepends && text.startsWith(' ') ? text.slice(1) : text, { addBos: false });
    },
    decode(ids, opts = {}) {
      const known: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        if (Number.isInteger(id) && id >= 0 && id < vocabSize && lib.id_to_token(id) !== undefined) known.push(id);
      }
      // The library throws on an empty list.
      if (known.length === 0) return '';
      return libraryCall(path, () =>
        lib.decode(known, {
          skip_special_tokens: opts.skipSpecialTokens ?? false,
          clean_up_tokenization_spaces: cleanUp,
        }),
      );
    },
  };
  // The library checks little when it builds and fails on first use; fail here instead,
  // before a long job starts.
  tokenizer.decode(tokenizer.encode(PROBE_TEXT, { addBos: false }));
  return tokenizer;
}

/** Runs the library on a malformed tokenizer.json's behalf: what it throws (often a
 *  TypeError deep inside) is the file's fault, said as such. */
function libraryCall<T>(path: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw new UserError(`${path}: the tokenizer fails on its own pipeline (${e instanceof Error ? e.message : String(e)}); is the file damaged?`);
  }
}

/** The first special token of a TemplateProcessing "single" template (possibly inside a
 *  Sequence post-processor, as in Llama 3), or null. */
function templateFirstSpecial(pp: unknown): string | null {
  if (!isObject(pp)) return null;
  if (pp.type === 'Sequence' && Array.isArray(pp.processors)) {
    for (const p of pp.processors) {
      const t = templateFirstSpecial(p);
      if (t !== null) return t;
    }
    return null;
  }
  if (pp.type !== 'TemplateProcessing' || !Array.isArray(pp.single)) return null;
  const first: unknown = pp.single[0];
  if (isObject(first) && isObject(first.SpecialToken) && typeof first.SpecialToken.id === 'string') {
    return first.SpecialToken.id;
  }
  return null;
}

/** UserError when the tokenizer produces ids the model has no embedding row for. */
export function checkTokenizerMatchesModel(tok: TextTokenizer, vocabSize: number): void {
  const maxId = tok.vocabSize - 1;
  if (maxId >= vocabSize) {
    throw new UserError(
      `${tok.path}: the tokenizer has token ids up to ${maxId} but the model's vocab_size is ${vocabSize}: ` +
        'this tokenizer does not belong to this model',
    );
  }
}

/** Llama-2/Mistral-style normalizers prepend ▁ to every input (Prepend, possibly in a Sequence). */
function hasPrependNormalizer(normalizer: unknown): boolean {
  if (!isObject(normalizer)) return false;
  if (normalizer.type === 'Prepend') return true;
  return normalizer.type === 'Sequence' && Array.isArray(normalizer.normalizers) && normalizer.normalizers.some(hasPrependNormalizer);
}
