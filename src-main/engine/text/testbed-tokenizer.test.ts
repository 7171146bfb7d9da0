// The testbed's tokenizer (assets/testbed-data, trained by scripts/testbed/train-bpe.ts) as the
// engine uses it: it loads with the right special tokens, gives exactly the ids recorded in
// tokenizer-check.json (which pretrain.py also demands of Python's `tokenizers`, so the model
// is trained on the ids the engine will feed it), round-trips the committed splits, reads the
// same ids piecewise as the dataset reader does for eval/train, and our GGUF export accepts it.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ggufVocab } from '../gguf/vocab';
import { openTextDataset, readTokens } from './datasets';
import { loadTokenizer } from './tokenizer';

const DIR = resolve('assets/testbed-data');
const FINETUNE = resolve(DIR, 'finetune.txt');
const EVAL = resolve(DIR, 'eval.txt');

interface Check {
  vocab_size: number;
  cases: Array<{ name: string; text: string; ids: number[] }>;
}

describe('the testbed tokenizer', () => {
  const check = JSON.parse(readFileSync(resolve(DIR, 'tokenizer-check.json'), 'utf8')) as Check;

  it('loads as byte-level BPE with 8192 tokens, <|bos|> 1, <|endoftext|> 2, no BOS added, 512 positions', async () => {
    const tok = await loadTokenizer(DIR);
    expect(tok.vocabSize).toBe(8192);
    expect(check.vocab_size).toBe(8192);
    expect([tok.bosId, tok.eosId, tok.addBosByDefault, tok.modelMaxLength]).toEqual([1, 2, false, 512]);
  });

  it('gives the recorded ids on every sample and decodes them back to the text', async () => {
    const tok = await loadTokenizer(DIR);
    expect(check.cases.length).toBeGreaterThanOrEqual(6);
    for (const c of check.cases) {
      const ids = Array.from(await tok.encode(c.text, { addBos: false }));
      expect(ids, c.name).toEqual(c.ids);
      expect(await tok.decode(ids), c.name).toBe(c.text);
    }
  });

  it('round-trips the fine-tuning and evaluation splits whole, and reads them piecewise to the same ids', async () => {
    // The splits whole in one call: a budget far above the pipeline's per-piece one.
    const tok = await loadTokenizer(DIR, { budgetMs: 300_000 });
    for (const path of [FINETUNE, EVAL]) {
      const text = readFileSync(path, 'utf8');
      const ids = await tok.encode(text, { addBos: false });
      // Byte-level BPE compresses English prose several-fold; a broken merge table would not.
      expect(Buffer.byteLength(text) / ids.length).toBeGreaterThan(3);
      expect(await tok.decode(ids)).toBe(text);
      const streamed = await readTokens(openTextDataset(path), tok, { separator: 'eos' });
      expect(Array.from(streamed)).toEqual(Array.from(ids));
    }
  });

  it("is accepted by the GGUF export as llama.cpp's gpt2 tokenizer with GPT-2's splitting", async () => {
    const { metadata, notes } = await ggufVocab(DIR, 8192);
    expect(notes).toEqual([]);
    const value = (key: string) => (metadata.get(key) as { value?: unknown } | undefined)?.value;
    expect(value('tokenizer.ggml.model')).toBe('gpt2');
    expect(value('tokenizer.ggml.pre')).toBe('gpt-2');
    expect(value('tokenizer.ggml.bos_token_id')).toBe(1);
    expect(value('tokenizer.ggml.eos_token_id')).toBe(2);
    const tokens = metadata.get('tokenizer.ggml.tokens') as { values: ArrayLike<string> };
    const merges = metadata.get('tokenizer.ggml.merges') as { values: ArrayLike<string> };
    expect(tokens.values.length).toBe(8192);
    expect(merges.values.length).toBe(8192 - 3 - 256);
  });
});
