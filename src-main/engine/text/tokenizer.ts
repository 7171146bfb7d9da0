// A model's tokenizer from its Hugging Face tokenizer.json (+ tokenizer_config.json), run by
// @huggingface/tokenizers on a thread of its own (tokenizer-thread.ts: a hostile regex can
// neither freeze the caller nor outlive a cancel; every call has a time budget). Special
// tokens (BOS) are added here, not by the library's post-processor, so that "add BOS or not"
// follows transformers' rules in one place and no template-added EOS sneaks into calibration
// text.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors';
import { MAX_JSON_DEPTH, readJsonObject, readTextFile } from '../io/json-file';
import { LOAD_BUDGET_MS, TOKENIZE_BUDGET_MS, TokenizerThread } from './tokenizer-thread';

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
  /** Rejects with a UserError past the time budget, a CancelledError when `signal` aborts. */
  encode(text: string, opts?: { addBos?: boolean; signal?: AbortSignal }): Promise<Int32Array>;
  /**
   * Encodes a piece that continues a text whose earlier part was encoded separately (cut
   * before a space and a letter, see text-pieces.ts), so that concatenated pieces give the
   * whole text's ids: with a Prepend("▁") normalizer the piece's leading space is dropped,
   * because the normalizer's prepended ▁ stands for it.
   */
  encodeContinuation(text: string, signal?: AbortSignal): Promise<Int32Array>;
  /** Ids outside the vocabulary (e.g. a model's padded embedding rows) decode to nothing;
   *  special tokens (BOS, EOS, ...) are written out unless skipSpecialTokens. */
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): Promise<string>;
  /** Ends the tokenizer's thread (later calls reject). */
  dispose(): void;
}

export interface LoadTokenizerOptions {
  /** Time one encode or decode may take (default TOKENIZE_BUDGET_MS). */
  budgetMs?: number;
  signal?: AbortSignal;
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
const MAX_TOKENIZER_BYTES = 256 * 2 ** 20;
// tokenizer_config.json is parsed here: small (a chat template at most), so bounded tighter.
const MAX_CONFIG_BYTES = 16 * 2 ** 20;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

// Tokenizers a caller never disposed give their thread back when collected.
const orphans = new FinalizationRegistry<TokenizerThread>((thread) => thread.release());

export async function loadTokenizer(modelDir: string, o: LoadTokenizerOptions = {}): Promise<TextTokenizer> {
  const path = join(modelDir, 'tokenizer.json');
  const configPath = join(modelDir, 'tokenizer_config.json');
  if (!(await exists(path))) {
    const spOnly = await exists(join(modelDir, 'tokenizer.model'));
    throw new UserError(
      `${modelDir} has no tokenizer.json` +
        (spOnly ? ' (it has only tokenizer.model, which is not supported: convert it with transformers first)' : ''),
    );
  }
  const text = await readTextFile(path, MAX_TOKENIZER_BYTES);
  const config = (await readJsonObject(configPath, { optional: true, maxBytes: MAX_CONFIG_BYTES })) ?? {};
  const budgetMs = o.budgetMs ?? TOKENIZE_BUDGET_MS;
  const thread = TokenizerThread.open(path);
  try {
    return await build(thread, path, configPath, text, config, budgetMs, o.signal);
  } catch (e) {
    // A bad file leaves the thread healthy (kept for the next tokenizer); a budget or cancel has ended it.
    thread.release();
    throw e;
  }
}

async function build(thread: TokenizerThread, path: string, configPath: string, text: string, config: Json, budgetMs: number, signal?: AbortSignal): Promise<TextTokenizer> {
  const loading = { budgetMs: LOAD_BUDGET_MS, signal, what: 'reading the tokenizer' };
  const parsed = await thread.call({ op: 'parse', text, maxDepth: MAX_JSON_DEPTH }, loading);
  if (parsed.error !== undefined) throw new UserError(`${path}: ${parsed.error}`);
  const s = parsed.summary!;
  if (!s.isObject) throw new UserError(`${path}: not a JSON object`);
  if (!s.hasModel) throw new UserError(`${path}: missing "model"`);
  if (!s.modelTypeIsString || !SUPPORTED_MODELS.includes(s.modelType)) {
    const shown = s.modelTypeIsString ? JSON.stringify(s.modelType) : s.modelType;
    throw new UserError(`${path}: tokenizer model type ${shown} is not supported (supported: ${SUPPORTED_MODELS.join(', ')})`);
  }
  if (!s.vocabIsObject || !s.mergesIsArray) {
    throw new UserError(`${path}: the BPE model needs "vocab" (an object) and "merges" (a list)`);
  }
  if (s.maxId < 0) throw new UserError(`${path}: the vocabulary is empty`);

  // BOS/EOS: tokenizer_config.json names them (a string, an AddedToken-like object, or null);
  // without that, the post-processor's template, then common names.
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
  if (typeof config.add_bos_token !== 'boolean' && config.add_bos_token !== undefined && config.add_bos_token !== null) {
    throw new UserError(`${configPath}: "add_bos_token" must be true or false`);
  }
  const names = [...new Set([...COMMON_BOS, ...COMMON_EOS, s.templateBos, bosName, eosName].filter((n): n is string => typeof n === 'string'))];
  const built = await thread.call({ op: 'build', config, tokens: names }, loading);
  if (built.buildError !== undefined) throw new UserError(`${path}: cannot build the tokenizer: ${built.buildError}`);
  const known = new Map(names.map((n, i) => [n, (built.ids as Array<number | null>)[i]]));
  const idOf = (token: string, from: string): number => {
    const id = known.get(token);
    if (id === null || id === undefined) throw new UserError(`${from}: token ${JSON.stringify(token)} is not in ${path}`);
    return id;
  };
  const firstKnown = (list: string[]): number | null => {
    for (const n of list) {
      const id = known.get(n);
      if (id !== null && id !== undefined) return id;
    }
    return null;
  };

  let bosId: number | null;
  if (bosName === undefined) bosId = s.templateBos !== null ? idOf(s.templateBos, path) : firstKnown(COMMON_BOS);
  else bosId = bosName === null ? null : idOf(bosName, configPath);
  let eosId: number | null;
  if (eosName === undefined) eosId = firstKnown(COMMON_EOS);
  else eosId = eosName === null ? null : idOf(eosName, configPath);

  // transformers: add_bos_token when the config says so; otherwise the fast tokenizer's
  // post-processor decides (a template starting with a special token).
  const addBosByDefault = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : s.templateBos !== null && bosId !== null; // an explicit null bos_token wins
  if (addBosByDefault && bosId === null) {
    throw new UserError(`${configPath}: add_bos_token is true but there is no bos_token`);
  }

  const maxLength = config.model_max_length;
  // transformers writes int(1e30) when a tokenizer has no limit; anything that large is "none".
  const modelMaxLength = typeof maxLength === 'number' && Number.isSafeInteger(maxLength) && maxLength > 0 && maxLength < 1e9 ? maxLength : null;

  // Faithful decoding: the library would otherwise tidy spaces (" ." → ".") unless told not to.
  const cleanUp = config.clean_up_tokenization_spaces === true;
  const vocabSize = s.maxId + 1;
  const pieceBudget = (chars: number) => ({ budgetMs, what: `tokenizing a piece of ${chars.toLocaleString('en-US')} characters` });

  const tokenizer: TextTokenizer = {
    path,
    vocabSize,
    bosId,
    eosId,
    addBosByDefault,
    modelMaxLength,
    async encode(text, opts = {}) {
      const addBos = opts.addBos ?? addBosByDefault;
      if (addBos && bosId === null) throw new UserError(`${path}: this tokenizer has no BOS token`);
      const { ids } = await thread.call({ op: 'encode', text }, { ...pieceBudget(text.length), signal: opts.signal });
      const encoded = ids as Int32Array;
      if (!addBos) return encoded;
      const out = new Int32Array(encoded.length + 1);
      out[0] = bosId as number;
      out.set(encoded, 1);
      return out;
    },
    encodeContinuation(text, signal) {
      return tokenizer.encode(s.prepends && text.startsWith(' ') ? text.slice(1) : text, { addBos: false, signal });
    },
    async decode(ids, opts = {}) {
      const candidates: number[] = [];
      for (let i = 0; i < ids.length; i++) if (Number.isInteger(ids[i]) && ids[i] >= 0) candidates.push(ids[i]);
      const options = { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: cleanUp };
      const r = await thread.call({ op: 'decode', ids: candidates, vocabSize, options }, { budgetMs, what: `decoding ${candidates.length} tokens` });
      return r.text as string;
    },
    dispose() {
      orphans.unregister(tokenizer);
      thread.release();
    },
  };
  orphans.register(tokenizer, thread, tokenizer);
  // The library checks little when it builds and fails on first use; fail here instead,
  // before a long job starts.
  await tokenizer.decode(await tokenizer.encode(PROBE_TEXT, { addBos: false }));
  return tokenizer;
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
