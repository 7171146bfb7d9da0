import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectUserError } from '../../test-support/expect-user-error';
import { documentsOf } from '../../test-support/documents';
import { makeTempDir } from '../../test-support/tiny-model';
import { UserError } from '../errors';
import { openTextDataset, readTokens, type TextDataset } from './datasets';
import { loadTokenizer, type TextTokenizer } from './tokenizer';
import { byteLevelBpe, sentencePieceBpe, writeTokenizer } from '../../test-support/tokenizer-fixtures';

let dir: string;
let bpe: TextTokenizer; // byte-level: "hello world" → 259 262 108 100, "hello" → 259, EOS 264
let spNoEos: TextTokenizer;
beforeAll(async () => {
  dir = await makeTempDir('loftq-data-');
  await mkdir(join(dir, 'bpe'));
  await writeTokenizer(join(dir, 'bpe'), byteLevelBpe());
  bpe = await loadTokenizer(join(dir, 'bpe'));
  await mkdir(join(dir, 'sp'));
  await writeTokenizer(join(dir, 'sp'), sentencePieceBpe(), { eos_token: null });
  spNoEos = await loadTokenizer(join(dir, 'sp'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, content);
  return p;
}
const all = documentsOf;
async function piecesOf(ds: TextDataset): Promise<string[]> {
  const out: string[] = [];
  for await (const piece of ds) out.push(piece.text);
  return out;
}

describe('.txt', () => {
  it('yields the file as one text (BOM dropped, every other character kept)', async () => {
    const text = 'para one\r\nline two\n\n\n  \t\npara two\n\nlast  \n';
    const p = await file('a.txt', '\uFEFF' + text);
    expect((await all(openTextDataset(p))).join('')).toBe(text);
    expect(await all(openTextDataset(await file('b.txt', 'single')))).toEqual(['single']);
  });

  it('streams a large file: the first document comes after one chunk', async () => {
    const para = 'lorem ipsum dolor sit amet '.repeat(36) + '\n' + 'consectetur '.repeat(20) + '\n\n';
    const count = Math.ceil((30 << 20) / para.length);
    const p = join(dir, 'big.txt');
    await writeFile(p, para.repeat(count));
    const size = (await stat(p)).size;
    const ds = openTextDataset(p);
    const it = ds[Symbol.asyncIterator]();
    const first = await it.next();
    // Cut before a space and a letter, so the next piece starts a word.
    expect(first.value.first).toBe(true);
    expect(para.repeat(count).startsWith(first.value.text)).toBe(true);
    expect(first.value.text.length).toBeGreaterThan(1 << 14);
    expect(ds.bytesRead).toBeLessThanOrEqual(2 << 16);
    let chars = first.value.text.length;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      expect(r.value.text).toMatch(/^ \p{L}/u);
      expect(r.value.first).toBe(false);
      chars += r.value.text.length;
    }
    expect(chars).toBe(size);
    expect(ds.bytesRead).toBe(size);
  });
});

describe('.jsonl', () => {
  const lines = [
    JSON.stringify({ text: 'first doc', id: 1 }),
    '',
    JSON.stringify({ text: 'second\ndoc', body: 'B' }),
    '   ',
    JSON.stringify({ text: null }),
    JSON.stringify({ text: '' }),
    JSON.stringify({ text: 'third', body: 'C' }),
  ].join('\n');

  it('yields the text field, skipping blank lines, nulls and empty values', async () => {
    const p = await file('a.jsonl', lines + '\n');
    expect(await all(openTextDataset(p))).toEqual(['first doc', 'second\ndoc', 'third']);
  });

  it('reads another field when asked', async () => {
    const p = await file('b.jsonl', [JSON.stringify({ body: 'B' }), JSON.stringify({ body: 'C', text: 1 })].join('\r\n'));
    expect(await all(openTextDataset(p, { field: 'body' }))).toEqual(['B', 'C']);
  });

  it('names the file, line and field of a bad line', async () => {
    const bad = await file('bad.jsonl', [JSON.stringify({ text: 'ok' }), '', '{"text": "unterminated'].join('\n'));
    await expectUserError(all(openTextDataset(bad)), /bad\.jsonl:3: not valid JSON/);
    const missing = await file('missing.jsonl', lines);
    await expectUserError(all(openTextDataset(missing, { field: 'body' })), /missing\.jsonl:1: no "body" field \(fields: text, id\)/);
    const notString = await file('num.jsonl', JSON.stringify({ text: 5 }));
    await expectUserError(all(openTextDataset(notString)), /num\.jsonl:1: field "text" is not a string/);
    const array = await file('arr.jsonl', '["text"]');
    await expectUserError(all(openTextDataset(array)), /arr\.jsonl:1: not a JSON object/);
  });
});

describe('opening', () => {
  it('rejects unknown extensions, a field for .txt, and missing files', async () => {
    expect(() => openTextDataset(join(dir, 'x.csv'))).toThrow(UserError);
    expect(() => openTextDataset(join(dir, 'x.csv'))).toThrow(/x\.csv: unsupported dataset type "\.csv" \(supported: \.txt, \.jsonl, \.parquet\)/);
    expect(() => openTextDataset(join(dir, 'a.txt'), { field: 'body' })).toThrow(/only to \.jsonl and \.parquet/);
    await expectUserError(all(openTextDataset(join(dir, 'nope.jsonl'))), /cannot read .*nope\.jsonl: not found/);
  });
});

describe('readTokens', () => {
  it('joins documents with EOS, or abutting', async () => {
    const p = await file('t.jsonl', [JSON.stringify({ text: 'hello world' }), JSON.stringify({ text: 'hello' })].join('\n'));
    expect(Array.from(await readTokens(openTextDataset(p), bpe, { separator: 'eos' }))).toEqual([259, 262, 108, 100, 264, 259]);
    expect(Array.from(await readTokens(openTextDataset(p), bpe, { separator: 'none' }))).toEqual([259, 262, 108, 100, 259]);
    // No EOS in the tokenizer: 'eos' falls back to abutting; no BOS is added either way.
    expect(Array.from(await readTokens(openTextDataset(p), spNoEos, { separator: 'eos' }))).toEqual([271, 274, 262, 266, 271]);
  });

  it('stops at maxTokens without reading the rest', async () => {
    const p = await file('t2.txt', 'hello world\n\nhello\n');
    expect(Array.from(await readTokens(openTextDataset(p), bpe, { separator: 'eos', maxTokens: 5 }))).toEqual([259, 262, 108, 100, 10]);
    const big = openTextDataset(join(dir, 'big.txt'));
    const tokens = await readTokens(big, bpe, { separator: 'eos', maxTokens: 1000 });
    expect(tokens).toHaveLength(1000);
    expect(big.bytesRead).toBeLessThanOrEqual(2 << 16);
    await expectUserError(readTokens(openTextDataset(p), bpe, { separator: 'eos', maxTokens: 0 }), /maxTokens must be a positive integer/);
  });

  it('reports a dataset with no text', async () => {
    const empty = await file('empty.txt', '\n  \n\n');
    await expectUserError(readTokens(openTextDataset(empty), bpe, { separator: 'eos' }), /empty\.txt: no text found$/);
    const blanks = await file('blank.jsonl', [JSON.stringify({ text: '' }), JSON.stringify({ text: ' \n' })].join('\n'));
    await expectUserError(readTokens(openTextDataset(blanks), bpe, { separator: 'eos' }), /blank\.jsonl: no text found$/);
  });
});

describe('.txt in pieces tokenizes like the whole text', () => {
  const styles: Array<[string, () => Record<string, unknown>]> = [
    ['byte-level BPE (GPT-2 regex)', () => byteLevelBpe()],
    ['byte-level BPE (Qwen2 split)', () => byteLevelBpe({ qwen2Split: true })],
    ['SentencePiece BPE (Metaspace)', () => sentencePieceBpe({ style: 'metaspace' })],
    ['SentencePiece BPE (Prepend + Replace)', () => sentencePieceBpe({ style: 'prepend' })],
  ];
  for (const [label, make] of styles) {
    it(label, async () => {
      const tdir = join(dir, label.replace(/\W+/g, '-'));
      await mkdir(tdir, { recursive: true });
      await writeTokenizer(tdir, make());
      const tok = await loadTokenizer(tdir);
      // Words, numbers, punctuation, runs of spaces and newlines: several pieces of ~64k chars.
      const words = ['hello', 'world', 'hell', 'or', '2024', 'low', 'lower', 'a.', 'b,', '"q"', 'café'];
      const gaps = [' ', ' ', ' ', '  ', '\n', '\n\n', ' \n', '\t'];
      let seed = 12345;
      const next = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
      let text = '';
      while (text.length < 200_000) text += words[next(words.length)] + gaps[next(gaps.length)];
      const p = join(tdir, 'corpus.txt');
      await writeFile(p, text);
      const pieces = await piecesOf(openTextDataset(p));
      expect(pieces.length).toBeGreaterThan(2);
      const streamed = await readTokens(openTextDataset(p), tok, { separator: 'eos' });
      const whole = await tok.encode(text, { addBos: false });
      expect(streamed.length).toBe(whole.length);
      let firstDiff = -1;
      for (let i = 0; i < whole.length && firstDiff < 0; i++) if (streamed[i] !== whole[i]) firstDiff = i;
      expect(firstDiff).toBe(-1);
    });
  }
});
