import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectUserError } from '../../test-support/expect-user-error';
import { makeTempDir } from '../../test-support/tiny-model';
import { CancelledError, UserError } from '../errors';
import { checkTokenizerMatchesModel, loadTokenizer, type TextTokenizer } from './tokenizer';
import { byteLevelBpe, HOSTILE_TEXT, hostileSplitBpe, sentencePieceBpe, writeTokenizer } from '../../test-support/tokenizer-fixtures';

let root: string;
let n = 0;
beforeAll(async () => {
  root = await makeTempDir('loftq-tok-');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function load(json: Record<string, unknown>, config?: Record<string, unknown>): Promise<TextTokenizer> {
  const dir = join(root, `m${n++}`);
  await mkdir(dir);
  await writeTokenizer(dir, json, config);
  return loadTokenizer(dir);
}
const ids = (a: Int32Array) => Array.from(a);

describe('byte-level BPE (GPT-2 / Qwen2 style)', () => {
  it('encodes by merge rank and decodes back', async () => {
    const tok = await load(byteLevelBpe());
    // "hello" → he(256), ll(257), hell(258), hello(259); " world" → Ġ+w(260), o+r(261),
    // Ġw+or(262), and no merge joins "l" "d": bytes 'l' = 108, 'd' = 100.
    expect(ids(await tok.encode('hello world'))).toEqual([259, 262, 108, 100]);
    // GPT-2's regex keeps "2024" whole, so the "2 0" merge (263) applies; " é" is Ġ + the two
    // UTF-8 bytes of é (C3 A9).
    expect(ids(await tok.encode('2024 é'))).toEqual([263, 0x32, 0x34, 0x20, 0xc3, 0xa9]);
    // A special token written in the text is matched whole.
    expect(ids(await tok.encode('a<|endoftext|>b'))).toEqual([0x61, 264, 0x62]);
    for (const s of ['hello world', 'héllo  wörld\n\n\tx', '2024 é 🦙', ' leading and trailing ']) {
      expect(await tok.decode(await tok.encode(s))).toBe(s);
    }
    expect(await tok.encode('')).toHaveLength(0);
    expect(await tok.decode([])).toBe('');
  });

  it('applies a Split pre-tokenizer regex (Qwen2 isolates digits)', async () => {
    const tok = await load(byteLevelBpe({ qwen2Split: true }));
    expect(ids(await tok.encode('hello world'))).toEqual([259, 262, 108, 100]);
    // Each digit is its own pre-token, so "2 0" can never merge.
    expect(ids(await tok.encode('2024'))).toEqual([0x32, 0x30, 0x32, 0x34]);
    expect(await tok.decode(await tok.encode('2024 é'))).toBe('2024 é');
  });

  it('has no BOS; EOS from tokenizer_config.json or the common names', async () => {
    const plain = await load(byteLevelBpe());
    expect(plain).toMatchObject({ vocabSize: 265, bosId: null, eosId: 264, addBosByDefault: false });
    await expect(plain.encode('hi', { addBos: true })).rejects.toThrow(/has no BOS token/);
    const qwen = await load(byteLevelBpe(), { bos_token: null, eos_token: '<|endoftext|>', add_prefix_space: false });
    expect(qwen).toMatchObject({ bosId: null, eosId: 264, addBosByDefault: false });
    const noEos = await load(byteLevelBpe(), { eos_token: null });
    expect(noEos.eosId).toBeNull();
  });

  it('finds BOS in a Sequence post-processor (Llama 3 style)', async () => {
    const json = byteLevelBpe();
    json.post_processor = {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [],
          special_tokens: {},
        },
      ],
    };
    const tok = await load(json);
    expect(tok).toMatchObject({ bosId: 264, addBosByDefault: true });
    expect(ids(await tok.encode('hello'))).toEqual([264, 259]);
    expect(ids(await tok.encode('hello', { addBos: false }))).toEqual([259]);
  });
});

describe('SentencePiece-style BPE (Llama / Mistral style)', () => {
  it('encodes with ▁ word starts and byte fallback (Metaspace)', async () => {
    const tok = await load(sentencePieceBpe());
    // Metaspace makes "▁hello▁world"; merges in rank order: ▁h, ll, ▁he, ▁hell, ▁hello, ▁w,
    // or, ▁wor → ▁hello(271) ▁wor(274) l(262) d(266). BOS <s>=1 comes from the template.
    expect(ids(await tok.encode('hello world'))).toEqual([1, 271, 274, 262, 266]);
    expect(ids(await tok.encode('hello world', { addBos: false }))).toEqual([271, 274, 262, 266]);
    // Digits and é are not in the vocabulary: byte fallback, <0xXX> = 3 + XX.
    expect(ids(await tok.encode('2024 é', { addBos: false }))).toEqual([259, 3 + 0x32, 3 + 0x30, 3 + 0x32, 3 + 0x34, 259, 3 + 0xc3, 3 + 0xa9]);
    // Two spaces: the first ▁ stays alone, the second starts ▁wor.
    expect(ids(await tok.encode('hello  world', { addBos: false }))).toEqual([271, 259, 274, 262, 266]);
    for (const s of ['hello world', 'héllo  wörld 2024\n\nx', 'a🦙b']) {
      expect(await tok.decode(await tok.encode(s, { addBos: false }))).toBe(s);
    }
    expect(await tok.decode(await tok.encode('hello'), { skipSpecialTokens: true })).toBe('hello');
    expect(tok).toMatchObject({ vocabSize: 275, bosId: 1, eosId: 2, addBosByDefault: true });
  });

  it('encodes the same with a Prepend + Replace normalizer (Llama 2)', async () => {
    const tok = await load(sentencePieceBpe({ style: 'prepend' }));
    expect(ids(await tok.encode('hello world'))).toEqual([1, 271, 274, 262, 266]);
    // Prepend always adds ▁, so a leading space gives "▁▁hello" → ▁ + ▁hello.
    expect(ids(await tok.encode(' hello', { addBos: false }))).toEqual([259, 271]);
    for (const s of ['hello world', ' héllo 2024', 'x\ny']) {
      expect(await tok.decode(await tok.encode(s), { skipSpecialTokens: true })).toBe(s);
    }
    // As in transformers: the special token is written out, then the word's ▁ as a space.
    expect(await tok.decode(await tok.encode('hello world'))).toBe('<s> hello world');
  });

  it('follows add_bos_token and the special tokens of tokenizer_config.json', async () => {
    const off = await load(sentencePieceBpe(), { add_bos_token: false, bos_token: '<s>', eos_token: '</s>' });
    expect(off.addBosByDefault).toBe(false);
    expect(ids(await off.encode('hello'))).toEqual([271]);
    expect(ids(await off.encode('hello', { addBos: true }))).toEqual([1, 271]);
    // AddedToken-style objects, as older configs write them.
    const obj = await load(sentencePieceBpe(), {
      add_bos_token: true,
      bos_token: { content: '<s>', lstrip: false, rstrip: false, normalized: false, single_word: false },
      eos_token: { content: '</s>' },
    });
    expect(obj).toMatchObject({ bosId: 1, eosId: 2, addBosByDefault: true });
    // An explicit null bos_token overrides the template's <s>.
    const none = await load(sentencePieceBpe(), { bos_token: null });
    expect(none).toMatchObject({ bosId: null, addBosByDefault: false });
    expect(ids(await none.encode('hello'))).toEqual([271]);
  });
});

describe('errors', () => {
  it('names a model folder with no tokenizer.json', async () => {
    const dir = join(root, 'empty');
    await mkdir(dir);
    await expectUserError(loadTokenizer(dir), /empty has no tokenizer\.json$/);
    await writeFile(join(dir, 'tokenizer.model'), 'x');
    await expectUserError(loadTokenizer(dir), /has no tokenizer\.json \(it has only tokenizer\.model/);
  });

  it('rejects invalid JSON in either file', async () => {
    const dir = join(root, 'badjson');
    await mkdir(dir);
    await writeFile(join(dir, 'tokenizer.json'), '{"model": ');
    await expectUserError(loadTokenizer(dir), /badjson\/tokenizer\.json: not valid JSON/);
    await writeTokenizer(dir, byteLevelBpe());
    await writeFile(join(dir, 'tokenizer_config.json'), 'nope');
    await expectUserError(loadTokenizer(dir), /tokenizer_config\.json: not valid JSON/);
  });

  it('rejects unsupported models and components', async () => {
    await expectUserError(
      load({ ...byteLevelBpe(), model: { type: 'WordPiece', vocab: { a: 0 } } }),
      /tokenizer\.json: tokenizer model type "WordPiece" is not supported \(supported: BPE\)/,
    );
    await expectUserError(load({ ...byteLevelBpe(), model: { vocab: {} } }), /model type null is not supported/);
    await expectUserError(
      load({ ...byteLevelBpe(), pre_tokenizer: { type: 'Mystery' } }),
      /tokenizer\.json: cannot build the tokenizer: .*Mystery/,
    );
  });

  it('rejects special tokens that are not in the vocabulary', async () => {
    await expectUserError(load(sentencePieceBpe(), { bos_token: '<bos>' }), /tokenizer_config\.json: token "<bos>" is not in/);
    await expectUserError(load(byteLevelBpe(), { add_bos_token: true }), /add_bos_token is true but there is no bos_token/);
  });

  it('checks the tokenizer against the model vocab_size', async () => {
    const tok = await load(byteLevelBpe()); // ids 0..264
    expect(() => checkTokenizerMatchesModel(tok, 265)).not.toThrow();
    expect(() => checkTokenizerMatchesModel(tok, 320)).not.toThrow(); // padded embeddings are fine
    expect(() => checkTokenizerMatchesModel(tok, 200)).toThrow(UserError);
    expect(() => checkTokenizerMatchesModel(tok, 200)).toThrow(/token ids up to 264 but the model's vocab_size is 200/);
    // Ids past the tokenizer (padded rows a model may emit) decode to nothing.
    expect(await tok.decode([259, 300, -1])).toBe('hello');
  });
});

describe('a hostile tokenizer.json (issue 23, item 1)', () => {
  const hostile = hostileSplitBpe;
  const text = HOSTILE_TEXT;

  it('fails in one line once the time budget is spent, and the caller never stalls meanwhile', async () => {
    // The probe text is short enough to pass; the hostile text is not.
    const tok = await load(hostile());
    let ticks = 0;
    let worstGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      ticks++;
    }, 10);
    const started = performance.now();
    const tokenizer = await loadTokenizer(tok.path.replace(/tokenizer\.json$/, ''), { budgetMs: 500 });
    const e = await tokenizer.encode(text).catch((x: unknown) => x);
    clearInterval(timer);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/tokenizer\.json: tokenizing a piece of 335 characters took more than 0\.5 s, so it was stopped: the tokenizer's regular expressions backtrack/);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(ticks).toBeGreaterThan(10);
    expect(worstGap).toBeLessThan(200);
    // The thread is gone: later calls fail the same way, at once.
    await expect(tokenizer.encode('hi')).rejects.toThrow(/took more than/);
    tok.dispose();
  });

  it('a cancel stops it at once, mid-tokenisation', async () => {
    const tok = await load(hostile());
    const controller = new AbortController();
    const pending = tok.encode(text, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 200));
    const t = performance.now();
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
    expect(performance.now() - t).toBeLessThan(100);
  });
});

