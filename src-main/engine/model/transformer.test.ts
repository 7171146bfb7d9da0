// The ONNX forward pass against the float64 reference forward (test-support/reference-forward), on tiny
// generated llama (GQA), qwen2 (q/k/v biases, tied embeddings) and mistral (sliding window)
// models, with and without a LoRA branch.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { maxRelError } from '../../test-support/max-relative-error';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referenceLogits } from '../../test-support/reference-forward';
import { makeTempDir, writeTinyModel, type TinyModelOptions } from '../../test-support/tiny-model';
import { Rng } from '../util/random';
import { Transformer } from './transformer';
import { loadModelWeights, type WeightSet } from './weights';

const seed = Date.now() % 1_000_000;
let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-model-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const cases: Array<[string, TinyModelOptions]> = [
  ['llama with grouped-query attention', { architecture: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 40 }],
  ['qwen2 with q/k/v biases and tied embeddings', { architecture: 'qwen2', layers: 2, hidden: 32, heads: 4, kvHeads: 1, intermediate: 40, vocab: 36, tied: true }],
  ['mistral with a sliding window shorter than the sequence', { architecture: 'mistral', layers: 2, hidden: 24, heads: 2, kvHeads: 2, intermediate: 40, vocab: 30, configOverrides: { sliding_window: 5 } }],
];

describe('Transformer forward vs float64 reference', () => {
  for (const [label, options] of cases) {
    it(`${label} (seed ${seed})`, async () => {
      const dir = join(tmp, label.split(' ')[0]);
      // Small weights keep activations in a range where float32 vs float64 is a fair test.
      await writeTinyModel(dir, { ...options, seed, dtype: 'F32', std: 0.3 });
      const weights = await loadModelWeights(dir);
      const config = weights.config;
      const rng = new Rng(seed);
      const ids = Array.from({ length: 12 }, () => rng.nextUint32() % config.vocabSize);
      const transformer = new Transformer(weights);
      try {
        const ours = await transformer.logits(Int32Array.from(ids));
        const ref = referenceLogits(weights, ids);
        // float32 arithmetic through a few layers of tiny sizes: ~1e-6; 1e-5 leaves room.
        expect(maxRelError(ours, ref)).toBeLessThan(1e-5);
        // nll of the next tokens from the same forward, against log-softmax of the reference.
        const targets = Int32Array.from(ids.slice(1).concat([0]));
        const nll = await transformer.nll(Int32Array.from(ids), targets);
        for (let t = 0; t < ids.length; t++) {
          const row = ref.subarray(t * config.vocabSize, (t + 1) * config.vocabSize);
          const mx = Math.max(...row);
          const lse = mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0));
          expect(nll[t]).toBeCloseTo(lse - row[targets[t]], 4);
        }
      } finally {
        await transformer.dispose();
      }
    });
  }

  it('adds a LoRA branch s·(x·Aᵀ)·Bᵀ to the targeted projections', async () => {
    const dir = join(tmp, 'lora');
    await writeTinyModel(dir, { architecture: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 40, seed, dtype: 'F32', std: 0.3 });
    const base = await loadModelWeights(dir);
    const rng = new Rng(seed + 1);
    const r = 3;
    const layers = base.layers.map((layer) => {
      const tensors = new Map(layer.tensors), shapes = new Map(layer.shapes);
      for (const m of ['q_proj', 'v_proj', 'down_proj'] as const) {
        const [out, inp] = layer.shapes.get(m)!;
        tensors.set(`${m}.lora_A`, rng.fillNormal(new Float32Array(r * inp), 0.2) as Float32Array).set(`${m}.lora_B`, rng.fillNormal(new Float32Array(out * r), 0.2) as Float32Array);
        shapes.set(`${m}.lora_A`, [r, inp]).set(`${m}.lora_B`, [out, r]);
      }
      return { tensors, shapes };
    });
    const withLora: WeightSet = { ...base, layers, lora: { modules: ['q_proj', 'v_proj', 'down_proj'], scaling: 2 } };
    const ids = Array.from({ length: 10 }, () => rng.nextUint32() % base.config.vocabSize);
    const transformer = new Transformer(withLora);
    try {
      const ours = await transformer.logits(Int32Array.from(ids));
      expect(maxRelError(ours, referenceLogits(withLora, ids))).toBeLessThan(1e-5);
      expect(maxRelError(ours, referenceLogits(base, ids))).toBeGreaterThan(1e-2);
    } finally {
      await transformer.dispose();
    }
  });

  it('rejects sequences beyond max_position_embeddings and ids outside the vocabulary', async () => {
    const dir = join(tmp, 'limits');
    await writeTinyModel(dir, { layers: 1, hidden: 16, intermediate: 24, vocab: 20, configOverrides: { max_position_embeddings: 8 } });
    const transformer = new Transformer(await loadModelWeights(dir));
    try {
      await expect(transformer.logits(new Int32Array(9))).rejects.toThrow(/sequence length 9 exceeds the model's max_position_embeddings 8/);
      await expect(transformer.logits(Int32Array.from([1, 20]))).rejects.toThrow(/token id 20 is outside the vocabulary/);
    } finally {
      await transformer.dispose();
    }
  });
});
