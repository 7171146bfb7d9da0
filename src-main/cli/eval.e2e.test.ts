// `loftq eval` end to end: a generated model with a generated tokenizer, data in each
// format, a run directory evaluated in its three weight sources, and the bad inputs.
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTextDataset, readTokens } from '../engine/text/datasets';
import { loadTokenizer } from '../engine/text/tokenizer';
import { perplexity } from '../engine/model/perplexity';
import { Transformer } from '../engine/model/transformer';
import { loadModelWeights } from '../engine/model/weights';
import { loftq } from '../test-support/cli';
import { makeTempDir, writeTinyModel } from '../test-support/tiny-model';
import { byteLevelBpe, writeTokenizer } from '../test-support/tokenizer-fixtures';

let tmp: string;
let model: string;
let text: string;

beforeAll(async () => {
  tmp = await makeTempDir('loftq-eval-');
  model = join(tmp, 'model');
  // Fixed seed: the Q vs Q + adapter comparison below must not depend on the draw.
  await writeTinyModel(model, { layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 96, vocab: 272, seed: 42, std: 0.15, configOverrides: { max_position_embeddings: 64 } });
  await writeTokenizer(model, byteLevelBpe());
  const words = ['hello', 'world', 'hell', 'or', '2024', 'low'];
  text = Array.from({ length: 300 }, (_, i) => words[(i * 7 + (i >> 3)) % words.length]).join(' ');
  writeFileSync(join(tmp, 'data.txt'), text);
  writeFileSync(join(tmp, 'data.jsonl'), text.match(/.{1,200}(\s|$)/g)!.map((t) => JSON.stringify({ body: t })).join('\n'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loftq eval', () => {
  it('a model folder: the perplexity the engine computes, with the protocol in the result', async () => {
    const r = loftq('eval', model, '--data', join(tmp, 'data.txt'), '--seq-len', '32', '--stride', '16', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.events.some((e) => e.type === 'eval')).toBe(true);
    const result = r.events.at(-1) as { kind: string; seq_len: number; stride: number; results: Array<{ weights: string; ppl: number; tokens: number }> };
    expect(result).toMatchObject({ type: 'result', kind: 'model', seq_len: 32, stride: 16 });
    expect(result.results.map((x) => x.weights)).toEqual(['fp']);
    // Same computation in process: the CLI adds nothing and loses nothing.
    const tokenizer = await loadTokenizer(model);
    const ids = await readTokens(openTextDataset(join(tmp, 'data.txt')), tokenizer, { separator: 'eos' });
    const transformer = new Transformer(await loadModelWeights(model));
    const expected = await perplexity(transformer, ids, { seqLen: 32, stride: 16 });
    await transformer.dispose();
    expect(result.results[0].tokens).toBe(ids.length - 1);
    expect(result.results[0].ppl).toBeCloseTo(expected.ppl, 6);
    // A random model of 272 tokens is near-uniform: far from 1, far below 10⁴.
    expect(result.results[0].ppl).toBeGreaterThan(10);
    expect(result.results[0].ppl).toBeLessThan(10_000);
  });

  it('--max-tokens and a .jsonl field', () => {
    const r = loftq('eval', model, '--data', join(tmp, 'data.jsonl'), '--field', 'body', '--seq-len', '32', '--max-tokens', '100', '--json');
    expect(r.code).toBe(0);
    const result = r.events.at(-1) as { stride: number; results: Array<{ tokens: number }> };
    expect(result.stride).toBe(16);
    expect(result.results[0].tokens).toBe(99);
  });

  it('a run directory: full precision, Q and Q + adapter, appended to metrics.jsonl', () => {
    const run = join(tmp, 'run');
    expect(loftq('quantize', model, '--out', run, '--bits', '2', '--rank', '8', '--iters', '3').code).toBe(0);
    const r = loftq('eval', run, '--data', join(tmp, 'data.txt'), '--seq-len', '48', '--stride', '24', '--json');
    expect(r.code).toBe(0);
    const result = r.events.at(-1) as { kind: string; results: Array<{ weights: string; ppl: number; tokens: number }> };
    expect(result.kind).toBe('run');
    const [fp, q, qLora] = result.results;
    expect(result.results.map((x) => x.weights)).toEqual(['fp', 'q', 'q+lora']);
    // LoftQ's adapter brings the quantized model back towards full precision.
    expect(Math.abs(Math.log(qLora.ppl / fp.ppl))).toBeLessThan(Math.abs(Math.log(q.ppl / fp.ppl)));
    const metrics = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.map((m) => m.weights)).toEqual(['fp', 'q', 'q+lora']);
    for (const [i, m] of metrics.entries()) {
      expect(m).toMatchObject({ split: 'eval', step: 0, seq_len: 48, stride: 24, tokens: result.results[i].tokens });
      expect(m.eval_ppl).toBeCloseTo(result.results[i].ppl, 10);
    }
  });

  it('bad input: one clear line, exit 1 (2 for usage)', () => {
    const last = (r: ReturnType<typeof loftq>) => r.stderr.trim().split('\n').at(-1);
    let r = loftq('eval', model, '--data', join(tmp, 'data.txt'), '--seq-len', '65');
    expect(r.code).toBe(1);
    expect(last(r)).toMatch(/--seq-len 65 exceeds the model's max_position_embeddings 64/);
    writeFileSync(join(tmp, 'blank.txt'), '\n \n\n');
    r = loftq('eval', model, '--data', join(tmp, 'blank.txt'));
    expect(r.code).toBe(1);
    expect(last(r)).toMatch(/blank\.txt: no text found/);
    r = loftq('eval', model, '--data', join(tmp, 'nope.jsonl'));
    expect(r.code).toBe(1);
    expect(last(r)).toMatch(/nope\.jsonl/);
    r = loftq('eval', model, '--data', join(tmp, 'data.jsonl'));
    expect(r.code).toBe(1);
    expect(last(r)).toMatch(/data\.jsonl:1: no "text" field/);
    expect(loftq('eval', model).code).toBe(2);
  });

  it('a tokenizer larger than the model\'s vocabulary', async () => {
    const small = join(tmp, 'small-vocab');
    await writeTinyModel(small, { layers: 1, hidden: 16, intermediate: 24, vocab: 100 });
    await writeTokenizer(small, byteLevelBpe());
    const r = loftq('eval', small, '--data', join(tmp, 'data.txt'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/vocab/i);
  });
});
