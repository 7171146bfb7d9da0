// Trains the testbed's byte-level BPE tokenizer (GPT-2's pre-tokenization, vocabulary 8192) on
// a sample of the pretraining corpus and writes it as a Hugging Face tokenizer.json +
// tokenizer_config.json, which the engine (@huggingface/tokenizers), transformers and our GGUF
// export all read.
//
//   npx tsx scripts/testbed/train-bpe.ts [--corpus testbed-corpus] [--out assets/testbed-data] [--vocab 8192] [--sample-mb 32]
//
// The sample: the corpus's training documents in the order of a hash of their names, taken
// until --sample-mb of text (so every source is represented in proportion). Words are the
// pieces of GPT-2's splitting regex (the one the ByteLevel pre-tokenizer uses), counted; BPE
// then repeatedly merges the most frequent adjacent pair of symbols (ties: the smaller pair of
// ids), keeping for each pair its count and the words it occurs in, so each merge touches only
// those words. Only the fine-tuning/evaluation text is never seen: the tokenizer, like the
// model, knows the pretraining kind of text only. Deterministic: same corpus, same file.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export const SPECIAL_TOKENS = ['<|unk|>', '<|bos|>', '<|endoftext|>'] as const;
// The pattern of tokenizers' ByteLevel pre-tokenizer (use_regex: true), as GPT-2 defined it.
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's byte → printable character table (bytes that print stand for themselves). */
export function byteToUnicode(): string[] {
  const table: string[] = new Array(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : 256 + extra++);
  return table;
}

/** A max-heap of [count, pair key]; ties pop the smaller key first. Stale entries are skipped by the caller. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private above(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    for (let i = this.counts.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.counts.length && this.above(l, m)) m = l;
        if (r < this.counts.length && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

const KEY = 1 << 16;
const pairKey = (a: number, b: number) => a * KEY + b;

export interface BpeResult {
  /** Token strings by id (specials, the 256 byte symbols, then one per merge). */
  tokens: string[];
  merges: Array<[string, string]>;
}

/** Learns merges until the vocabulary has `vocabSize` tokens (or no pair occurs twice). */
export function trainBpe(wordCounts: Map<string, number>, vocabSize: number, log: (s: string) => void = () => {}): BpeResult {
  const bytes = byteToUnicode();
  const tokens: string[] = [...SPECIAL_TOKENS, ...bytes];
  const firstByteId = SPECIAL_TOKENS.length;
  if (vocabSize > KEY) throw new Error(`vocabulary ${vocabSize} exceeds ${KEY}`);
  const encoder = new TextEncoder();
  const words: Int32Array[] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCounts) {
    const b = encoder.encode(w);
    if (b.length < 2) continue;
    words.push(Int32Array.from(b, (x) => x + firstByteId));
    counts.push(c);
  }
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const addPair = (key: number, c: number) => pairCount.set(key, (pairCount.get(key) ?? 0) + c);
  words.forEach((syms, w) => {
    for (let i = 0; i + 1 < syms.length; i++) {
      const key = pairKey(syms[i], syms[i + 1]);
      addPair(key, counts[w]);
      const list = pairWords.get(key);
      if (list === undefined) pairWords.set(key, [w]);
      else if (list[list.length - 1] !== w) list.push(w);
    }
  });
  const heap = new PairHeap();
  for (const [key, c] of pairCount) heap.push(c, key);
  const merges: Array<[string, string]> = [];
  const visited = new Int32Array(words.length).fill(-1);
  while (tokens.length < vocabSize && heap.size > 0) {
    const [count, key] = heap.pop();
    if (pairCount.get(key) !== count) continue; // stale
    if (count < 2) break;
    const a = Math.floor(key / KEY);
    const b = key % KEY;
    const id = tokens.length;
    tokens.push(tokens[a] + tokens[b]);
    merges.push([tokens[a], tokens[b]]);
    const changed = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      if (visited[w] === id) continue;
      visited[w] = id;
      const syms = words[w];
      let found = false;
      for (let i = 0; i + 1 < syms.length; i++) if (syms[i] === a && syms[i + 1] === b) found = true;
      if (!found) continue;
      const c = counts[w];
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = pairKey(syms[i], syms[i + 1]);
        addPair(k, -c);
        changed.add(k);
      }
      const next: number[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          next.push(id);
          i++;
        } else next.push(syms[i]);
      }
      const merged = Int32Array.from(next);
      words[w] = merged;
      for (let i = 0; i + 1 < merged.length; i++) {
        const k = pairKey(merged[i], merged[i + 1]);
        addPair(k, c);
        changed.add(k);
        if (merged[i] === id || merged[i + 1] === id) {
          const list = pairWords.get(k);
          if (list === undefined) pairWords.set(k, [w]);
          else if (list[list.length - 1] !== w) list.push(w);
        }
      }
    }
    pairCount.delete(key);
    pairWords.delete(key);
    changed.delete(key);
    for (const k of changed) {
      const c = pairCount.get(k)!;
      if (c > 0) heap.push(c, k);
      else pairCount.delete(k);
    }
    if (merges.length % 1000 === 0) log(`  ${merges.length} merges (last ${JSON.stringify(tokens[id])}, count ${count})`);
  }
  return { tokens, merges };
}

/** Words of GPT-2's splitting in `text`, counted into `into` (as byte-level strings' source text). */
export function countWords(text: string, into: Map<string, number>): void {
  for (const m of text.matchAll(GPT2_SPLIT)) into.set(m[0], (into.get(m[0]) ?? 0) + 1);
}

/** The tokenizer.json of a trained BPE (byte-level throughout, no normalizer, no post-processor). */
export function tokenizerJson(bpe: BpeResult): object {
  const vocab: Record<string, number> = {};
  bpe.tokens.forEach((t, id) => (vocab[t] = id));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: bpe.merges,
    },
  };
}

export function tokenizerConfig(modelMaxLength: number): object {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: SPECIAL_TOKENS[1],
    eos_token: SPECIAL_TOKENS[2],
    unk_token: SPECIAL_TOKENS[0],
    model_max_length: modelMaxLength,
    clean_up_tokenization_spaces: false,
  };
}

/** The corpus's training documents {text, source}, decompressed by xz. */
export function readCorpus(path: string): Array<{ text: string; source: string }> {
  const r = spawnSync('xz', ['-dc', path], { maxBuffer: 1 << 30, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`xz -dc ${path} failed: ${r.stderr || r.error?.message}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { text: string; source: string });
}

function main(): void {
  const { values } = parseArgs({
    options: { corpus: { type: 'string', default: 'testbed-corpus' }, out: { type: 'string', default: 'assets/testbed-data' }, vocab: { type: 'string', default: '8192' }, 'sample-mb': { type: 'string', default: '32' }, 'max-length': { type: 'string', default: '512' } },
  });
  const started = performance.now();
  const log = (s: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${s}`);
  const docs = readCorpus(join(values.corpus, 'train.jsonl.xz'));
  const order = docs.map((d) => ({ d, h: createHash('sha1').update(d.source).digest('hex') })).sort((x, y) => (x.h < y.h ? -1 : x.h > y.h ? 1 : 0));
  const budget = Number(values['sample-mb']) * 1e6;
  const counts = new Map<string, number>();
  let used = 0;
  let sampled = 0;
  for (const { d } of order) {
    if (used >= budget) break;
    countWords(d.text, counts);
    used += Buffer.byteLength(d.text);
    sampled++;
  }
  log(`sample: ${sampled} of ${docs.length} documents, ${(used / 1e6).toFixed(1)} MB, ${counts.size} distinct words`);
  const bpe = trainBpe(counts, Number(values.vocab), log);
  log(`vocabulary ${bpe.tokens.length} (${bpe.merges.length} merges)`);
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, 'tokenizer.json'), JSON.stringify(tokenizerJson(bpe)) + '\n');
  writeFileSync(join(values.out, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig(Number(values['max-length'])), null, 2) + '\n');
  log(`wrote ${join(values.out, 'tokenizer.json')}`);
}

if (process.argv[1] && /train-bpe\.ts$/.test(process.argv[1])) main();
