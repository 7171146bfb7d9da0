// parameterGradients (every weight, for pretraining) against central finite differences of
// the float64 reference loss; same tolerance argument as lora-gradients.test.ts: float32
// analytic (~1e-5 of the gradient's scale) vs float64 central differences with h = 1e-4
// (~1e-8), each sampled entry within 1e-3 of its tensor's largest |entry|.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, writeTinyModel, type TinyModelOptions } from '../../test-support/tiny-model';
import { loadModelWeights, type WeightSet } from '../model/weights';
import { Rng } from '../util/random';
import { parameterGradients } from './parameter-gradients';
import { referenceLoss, withRandomLora, type Overrides } from '../../test-support/reference-forward';

const seed = Date.now() % 1_000_000;
let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-grad-full-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const cases: Array<[string, TinyModelOptions, boolean]> = [
  ['llama with GQA, untied head, no adapter', { architecture: 'llama', layers: 2, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 24 }, false],
  ['qwen2 with biases, tied embeddings and an adapter', { architecture: 'qwen2', layers: 2, hidden: 16, heads: 4, kvHeads: 1, intermediate: 20, vocab: 24, tied: true }, true],
];

describe('parameterGradients vs finite differences of a float64 reference', () => {
  for (const [label, options, lora] of cases) {
    it(`${label} (seed ${seed})`, async () => {
      const rng = new Rng(seed + 23);
      const dir = join(tmp, label.split(' ')[0]);
      await writeTinyModel(dir, { ...options, seed, dtype: 'F32', std: 0.3 });
      const base = await loadModelWeights(dir);
      const w: WeightSet = lora ? withRandomLora(base, ['q_proj', 'down_proj'], 2, 2, rng) : base;
      const { vocabSize: V, hiddenSize: H } = w.config;
      const T = 8;
      // Ids from the lower half of the vocabulary, so that unused embedding rows exist.
      const ids = Int32Array.from({ length: T }, () => rng.nextUint32() % (V / 2));
      const targets = Int32Array.from({ length: T }, () => rng.nextUint32() % V);
      const mask = new Float32Array(T).fill(1);
      mask[1] = 0;
      const g = await parameterGradients(w, ids, targets, mask);
      expect(Math.abs(g.loss - referenceLoss(w, ids, targets, mask)) / g.loss).toBeLessThan(1e-5);
      expect(g.lmHead === null).toBe(options.tied === true);

      const h = 1e-4;
      const check = (what: string, analytic: Float32Array, p0: ArrayLike<number>, indices: number[], override: (p: Float64Array) => Overrides) => {
        expect(analytic.length, what).toBe(p0.length);
        let scale = 0;
        for (const v of analytic) scale = Math.max(scale, Math.abs(v));
        expect(scale, `${what}: gradient is zero (seed ${seed})`).toBeGreaterThan(1e-6);
        let worst = 0;
        for (const i of indices) {
          const at = (delta: number) => {
            const p = Float64Array.from(p0);
            p[i] += delta;
            return referenceLoss(w, ids, targets, mask, override(p));
          };
          worst = Math.max(worst, Math.abs(analytic[i] - (at(h) - at(-h)) / (2 * h)) / scale);
        }
        expect(worst, `${what} (seed ${seed})`).toBeLessThan(1e-3);
      };
      const random = (n: number, k: number) => Array.from({ length: k }, () => rng.nextUint32() % n);

      // Embedding: rows of used tokens (and, when tied, any row through the head).
      const usedRows = random(T, 4).map((t) => ids[t] * H + (rng.nextUint32() % H));
      check('embed', g.embed, w.embed, options.tied ? [...usedRows, ...random(V * H, 3)] : usedRows, (p) => ({ embed: p }));
      if (!options.tied) {
        for (let v = V / 2; v < V; v++) for (let i = 0; i < H; i++) expect(g.embed[v * H + i]).toBe(0);
        check('lm_head', g.lmHead!, w.lmHead, random(V * H, 4), (p) => ({ lmHead: p }));
      }
      check('norm', g.norm, w.norm, random(H, 3), (p) => ({ norm: p }));
      for (let l = 0; l < w.config.numLayers; l++) {
        for (const [key, grad] of g.layers[l]) {
          check(`layer ${l} ${key}`, grad, w.layers[l].tensors.get(key)!, random(grad.length, 2), (p) => ({ layers: new Map([[l, new Map([[key, p]])]]) }));
        }
        expect([...g.layers[l].keys()].sort()).toEqual([...w.layers[l].tensors.keys()].sort());
      }
    });
  }
});
