// Measures what reading and tokenizing a hostile dataset costs (issue 23, item 2): a single
// .jsonl line of SIZE MB (every token read, no --max-tokens), and a space-free .txt of CHARS
// characters read at --max-tokens 1000. Prints the time and the process's peak RSS for each.
// Run one case per process, so each peak is its own:
//   npx tsx scripts/hardening/dataset-memory.ts jsonl 40 [MODEL_DIR]
//   npx tsx scripts/hardening/dataset-memory.ts spacefree 4000000 [MODEL_DIR]
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTextDataset, readTokens } from '../../src-main/engine/text/datasets';
import { loadTokenizer } from '../../src-main/engine/text/tokenizer';

const [kind, amount, modelDir = 'assets/demo-model'] = process.argv.slice(2);
const dir = await mkdtemp(join(tmpdir(), 'loftq-memory-'));
try {
  let path: string;
  let maxTokens: number | undefined;
  if (kind === 'jsonl') {
    // Words of a small vocabulary with punctuation and digits: text a tokenizer really splits.
    const words = ['the', 'model', 'quantized', 'weights', 'error', 'low-rank', 'adapter', '2024', 'is', 'of', 'a', 'matrix,', 'and.'];
    path = join(dir, 'one-line.jsonl');
    // Written in slices, so that the measuring process never holds the line itself.
    const fd = openSync(path, 'w');
    writeSync(fd, '{"id": 1, "text": "');
    for (let written = 0, i = 0; written < Number(amount) * 1e6; ) {
      const slice: string[] = [];
      for (let k = 0; k < 10_000; k++, i++) slice.push(words[(i * 7919) % words.length]);
      written += writeSync(fd, slice.join(' ') + ' ');
    }
    writeSync(fd, '"}\n');
    closeSync(fd);
  } else if (kind === 'spacefree') {
    path = join(dir, 'space-free.txt');
    let s = '';
    for (let i = 0; s.length < Number(amount); i++) s += String.fromCharCode(97 + ((i * 7919) % 26)).repeat(1 + (i % 5));
    writeFileSync(path, s.slice(0, Number(amount)));
    maxTokens = 1000;
  } else throw new Error('usage: dataset-memory.ts jsonl MB | spacefree CHARS [MODEL_DIR]');
  const rssBefore = process.resourceUsage().maxRSS / 1024;
  const started = performance.now();
  const tokenizer = await loadTokenizer(modelDir);
  const ids = await readTokens(openTextDataset(path), tokenizer, { separator: 'eos', maxTokens });
  tokenizer.dispose();
  const seconds = (performance.now() - started) / 1000;
  const peak = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ kind, amount: Number(amount), tokens: ids.length, seconds: Number(seconds.toFixed(2)), peak_rss_mb: Math.round(peak), rss_before_mb: Math.round(rssBefore) }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
