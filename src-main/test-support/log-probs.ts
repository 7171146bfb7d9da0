// Next-token log-probabilities of the engine for a run, and how far two sets of them are apart
// (for judging an export by another runtime on the same token ids).
import { join } from 'node:path';
import { expect } from 'vitest';
import { attachAdapter, loadQuantizedWeights } from '../engine/model/weights';
import { Transformer } from '../engine/model/transformer';

/** The engine's log-probabilities [T][V] for a run (with its adapter or without). */
export async function engineLogProbs(runDir: string, withAdapter: boolean, tokens: number[]): Promise<Float64Array[]> {
  const q = await loadQuantizedWeights(runDir);
  const model = new Transformer(withAdapter ? await attachAdapter(q, join(runDir, 'adapter')) : q);
  const logits = await model.logits(Int32Array.from(tokens));
  const V = model.config.vocabSize;
  return tokens.map((_, t) => {
    const row = logits.subarray(t * V, (t + 1) * V);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const lse = max + Math.log(sum);
    return Float64Array.from(row, (v) => v - lse);
  });
}

/** Max and mean |Δ log p| over the entries llama.cpp gives a probability above e^-30. */
export function difference(a: Float64Array[], b: Float64Array[]): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  let n = 0;
  for (let t = 0; t < a.length; t++) {
    expect(b[t].length).toBe(a[t].length);
    for (let v = 0; v < a[t].length; v++) {
      if (a[t][v] < -30) continue;
      const d = Math.abs(a[t][v] - b[t][v]);
      max = Math.max(max, d);
      sum += d;
      n++;
    }
  }
  return { max, mean: sum / n };
}

