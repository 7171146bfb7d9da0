import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, writeTinyModel } from '../../test-support/tiny-model';
import { Rng } from '../util/random';
import { perplexity } from './perplexity';
import { Transformer } from './transformer';
import { loadModelWeights } from './weights';

const seed = Date.now() % 1_000_000;
let tmp: string;
let model: Transformer;
const V = 37;

beforeAll(async () => {
  tmp = await makeTempDir('loftq-ppl-');
  await writeTinyModel(join(tmp, 'm'), { layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 40, vocab: V, seed, std: 0.3, configOverrides: { max_position_embeddings: 64 } });
  model = new Transformer(await loadModelWeights(join(tmp, 'm')));
});
afterAll(async () => {
  await model.dispose();
  await rm(tmp, { recursive: true, force: true });
});

/** −log softmax(row)[target] in float64. */
function nllOf(row: Float32Array, target: number): number {
  let mx = -Infinity;
  for (const v of row) mx = Math.max(mx, v);
  let z = 0;
  for (const v of row) z += Math.exp(v - mx);
  return mx + Math.log(z) - row[target];
}

describe('sliding-window perplexity', () => {
  it('scores every token after the first exactly once, with the protocol\'s contexts', async () => {
    const rng = new Rng(seed);
    const ids = Int32Array.from({ length: 50 }, () => rng.nextUint32() % V);
    const seqLen = 16, stride = 6;
    const result = await perplexity(model, ids, { seqLen, stride });
    expect(result.tokens).toBe(ids.length - 1);
    // Reference: token j is predicted in the first window that ends past it, from that window's start.
    let nll = 0;
    let prevEnd = 0;
    let windows = 0;
    for (let begin = 0; prevEnd < ids.length; begin += stride) {
      const end = Math.min(begin + seqLen, ids.length);
      const logits = await model.logits(ids.slice(begin, end));
      for (let j = Math.max(prevEnd, begin + 1); j < end; j++) nll += nllOf(logits.subarray((j - 1 - begin) * V, (j - begin) * V), ids[j]);
      prevEnd = end;
      windows++;
    }
    expect(result.windows).toBe(windows);
    expect(result.nll_sum).toBeCloseTo(nll, 3);
    expect(result.ppl).toBeCloseTo(Math.exp(nll / (ids.length - 1)), 5);
  });

  it('equals the single-window value when the text fits in one window', async () => {
    const rng = new Rng(seed + 1);
    const ids = Int32Array.from({ length: 20 }, () => rng.nextUint32() % V);
    const logits = await model.logits(ids);
    let nll = 0;
    for (let j = 1; j < ids.length; j++) nll += nllOf(logits.subarray((j - 1) * V, j * V), ids[j]);
    const result = await perplexity(model, ids, { seqLen: 32, stride: 32 });
    expect(result.windows).toBe(1);
    expect(result.nll_sum).toBeCloseTo(nll, 4);
  });

  it('rejects a window beyond max_position_embeddings, a bad stride and too little text', async () => {
    await expect(perplexity(model, new Int32Array(10), { seqLen: 65, stride: 8 })).rejects.toThrow(/--seq-len 65 exceeds the model's max_position_embeddings 64/);
    await expect(perplexity(model, new Int32Array(10), { seqLen: 16, stride: 17 })).rejects.toThrow(/--stride/);
    await expect(perplexity(model, new Int32Array(1), { seqLen: 16, stride: 8 })).rejects.toThrow(/at least 2 tokens/);
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    const run = perplexity(model, new Int32Array(200), {
      seqLen: 16,
      stride: 4,
      signal: controller.signal,
      onProgress: (done) => done > 20 && controller.abort(),
    });
    await expect(run).rejects.toThrow(/cancelled/);
  });
});
