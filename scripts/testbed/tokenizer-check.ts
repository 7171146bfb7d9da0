// Records the engine's token ids for a sample of each kind of testbed text, and the tokenizer's
// bytes per token on each split, in assets/testbed-data/tokenizer-check.json. pretrain.py
// refuses to train unless Python's `tokenizers` gives exactly these ids, and the engine's test
// (src-main/engine/text/testbed-tokenizer.test.ts) keeps the engine giving them.
//
//   npx tsx scripts/testbed/tokenizer-check.ts [--corpus testbed-corpus] [--data assets/testbed-data]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadTokenizer, type TextTokenizer } from '../../src-main/engine/text/tokenizer';
import { readCorpus } from './train-bpe';

// Text that exercises every branch of the splitting regex and the byte-level alphabet.
const EDGE_CASES =
  "Don't split 'these' words; it's they're we've I'm you'll he'd.\n" +
  '  \tindented\t\ttabs   and  spaces   \n\n\nnumbers 3.14159 1,000,000 2024-01-31 0x1F\n' +
  'Unicode: café naïve Zürich Ωmega 東京 😀 — “quotes” ‘single’ …\n' +
  'code: fn(a, b) => { return a <= b && !c; } // x_y.z[0] += 1;\n' +
  'special-looking text: <s> </s> <unk> <|bos|>x <|endoftext|>y';

function firstChars(text: string, n: number): string {
  // Cut at a line end so the sample is a natural piece of text.
  if (text.length <= n) return text;
  const cut = text.lastIndexOf('\n', n);
  return text.slice(0, cut > n / 2 ? cut : n);
}

async function bytesPerToken(tok: TextTokenizer, texts: string[]): Promise<number> {
  let bytes = 0;
  let tokens = 0;
  for (const t of texts) {
    bytes += Buffer.byteLength(t);
    tokens += (await tok.encode(t, { addBos: false })).length;
  }
  return bytes / tokens;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { corpus: { type: 'string', default: 'testbed-corpus' }, data: { type: 'string', default: 'assets/testbed-data' } } });
  // Whole documents in one call (up to a few MB): a budget far above the pipeline's per-piece one.
  const tok = await loadTokenizer(values.data, { budgetMs: 600_000 });
  const val = readCorpus(join(values.corpus, 'val.jsonl.xz'));
  const finetune = readFileSync(join(values.data, 'finetune.txt'), 'utf8');
  const evalText = readFileSync(join(values.data, 'eval.txt'), 'utf8');
  const pick = (re: RegExp) => val.find((d) => re.test(d.source));
  const cases: Array<{ name: string; text: string }> = [
    { name: 'edge cases', text: EDGE_CASES },
    { name: 'Austen eval (start)', text: firstChars(evalText, 6000) },
    { name: 'Austen fine-tune (start)', text: firstChars(finetune, 6000) },
  ];
  for (const [name, re] of [
    ['pretraining prose (rst)', /\.rst/],
    ['pretraining HTML-derived prose', /\.html$/],
    ['pretraining Go', /\.go$/],
    ['pretraining Python', /\.py$/],
    ['pretraining Perl', /\.p[ml]$/],
    ['pretraining JavaScript/TypeScript', /\.(js|ts|mjs)$/],
  ] as const) {
    const doc = pick(re);
    if (doc) cases.push({ name: `${name}: ${doc.source}`, text: firstChars(doc.text, 6000) });
  }
  const out = {
    note: 'ids from the engine (src-main/engine/text/tokenizer.ts, @huggingface/tokenizers), no BOS; written by scripts/testbed/tokenizer-check.ts',
    vocab_size: tok.vocabSize,
    bytes_per_token: {
      pretrain_val: await bytesPerToken(tok, val.map((d) => d.text)),
      finetune: await bytesPerToken(tok, [finetune]),
      eval: await bytesPerToken(tok, [evalText]),
    },
    tokens: { finetune: (await tok.encode(finetune, { addBos: false })).length, eval: (await tok.encode(evalText, { addBos: false })).length },
    cases: await Promise.all(cases.map(async (c) => ({ ...c, ids: Array.from(await tok.encode(c.text, { addBos: false })) }))),
  };
  tok.dispose();
  // One line per case: the ids of a case are read together, not one per line.
  const { cases: written, ...head } = out;
  const body = JSON.stringify(head, null, 1).replace(/\n}$/, `,\n "cases": [\n${written.map((c) => '  ' + JSON.stringify(c)).join(',\n')}\n ]\n}`);
  writeFileSync(join(values.data, 'tokenizer-check.json'), body + '\n');
  console.log(JSON.stringify({ vocab_size: out.vocab_size, bytes_per_token: out.bytes_per_token, tokens: out.tokens, cases: out.cases.map((c) => `${c.name}: ${c.ids.length} ids`) }, null, 1));
}

void main();
