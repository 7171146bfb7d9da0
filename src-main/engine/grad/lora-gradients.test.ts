// loraGradients (forward, head backward, layer backwards in reverse) against central finite
// differences of a float64 reference loss, on tiny llama (GQA), qwen2 (q/k/v biases, tied
// embeddings) and mistral (sliding window) models with random nonzero adapters.
// Tolerance: as in model/decoder-backward-graph.test.ts, float32 analytic gradients (~1e-5 of the
// gradient's scale at worst through two layers and the head) vs float64 central differences
// with h = 1e-4 (~1e-8): each sampled entry within 1e-3 of its tensor's largest |entry|.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectUserError } from '../../test-support/expect-user-error';
import { makeTempDir, writeTinyModel, type TinyModelOptions } from '../../test-support/tiny-model';
import { LLAMA_MODULES, type LinearModule } from '../io/targets';
import { loadModelWeights, type WeightSet } from '../model/weights';
import { OrtRuntime } from '../tensor/ort-runtime';
import { Rng } from '../util/random';
import { loraGradients } from './lora-gradients';
import { referenceLoss, withRandomLora } from '../../test-support/reference-forward';

const seed = Date.now() % 1_000_000;
let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-grad-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function tinyWithLora(name: string, options: TinyModelOptions, modules: LinearModule[], rng: Rng): Promise<WeightSet> {
  const dir = join(tmp, name);
  await writeTinyModel(dir, { ...options, seed, dtype: 'F32', std: 0.3 });
  return withRandomLora(await loadModelWeights(dir), modules, 3, 2, rng);
}

function sequence(w: WeightSet, rng: Rng, T: number) {
  const V = w.config.vocabSize;
  const ids = Int32Array.from({ length: T }, () => rng.nextUint32() % V);
  const targets = Int32Array.from({ length: T }, () => rng.nextUint32() % V);
  // Leave two positions out (their targets are then ignored, even when invalid) and weigh one double.
  const mask = new Float32Array(T).fill(1);
  mask[0] = 0;
  mask[3] = 0;
  targets[3] = -100;
  mask[T - 1] = 2;
  return { ids, targets, mask };
}

const cases: Array<[string, TinyModelOptions, LinearModule[]]> = [
  ['llama with GQA, LoRA on every linear module', { architecture: 'llama', layers: 2, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 24 }, [...LLAMA_MODULES]],
  ['qwen2 with q/k/v biases and tied embeddings', { architecture: 'qwen2', layers: 2, hidden: 16, heads: 4, kvHeads: 1, intermediate: 20, vocab: 24, tied: true }, ['q_proj', 'k_proj', 'o_proj', 'up_proj', 'down_proj']],
  ['mistral with sliding window 3', { architecture: 'mistral', layers: 2, hidden: 16, heads: 2, kvHeads: 2, intermediate: 20, vocab: 24, configOverrides: { sliding_window: 3 } }, ['v_proj', 'gate_proj', 'down_proj']],
];

describe('loraGradients vs finite differences of a float64 reference', () => {
  for (const [label, options, modules] of cases) {
    it(`${label} (seed ${seed})`, async () => {
      const rng = new Rng(seed + 11);
      const w = await tinyWithLora(label.split(' ')[0], options, modules, rng);
      const { ids, targets, mask } = sequence(w, rng, 9);
      const result = await loraGradients(w, ids, targets, mask);
      const refLoss = referenceLoss(w, ids, targets, mask);
      expect(Math.abs(result.loss - refLoss) / refLoss, `loss (seed ${seed})`).toBeLessThan(1e-5);
      expect(result.denominator).toBe(9 - 2 + 1);
      expect(result.grads).toHaveLength(w.config.numLayers);

      const h = 1e-4;
      for (let l = 0; l < w.config.numLayers; l++) {
        expect([...result.grads[l].keys()].sort()).toEqual([...modules].sort());
        for (const m of modules) {
          for (const part of ['A', 'B'] as const) {
            const key = `${m}.lora_${part}`;
            const analytic = part === 'A' ? result.grads[l].get(m)!.dA : result.grads[l].get(m)!.dB;
            const p0 = w.layers[l].tensors.get(key)!;
            expect(analytic.length).toBe(p0.length);
            let scale = 0;
            for (const v of analytic) scale = Math.max(scale, Math.abs(v));
            expect(scale, `layer ${l} ${key}: gradient is zero (seed ${seed})`).toBeGreaterThan(1e-6);
            let worst = 0;
            for (let s = 0; s < 3; s++) {
              const i = rng.nextUint32() % p0.length;
              const at = (delta: number) => {
                const p = Float64Array.from(p0);
                p[i] += delta;
                return referenceLoss(w, ids, targets, mask, { layers: new Map([[l, new Map([[key, p]])]]) });
              };
              const numeric = (at(h) - at(-h)) / (2 * h);
              worst = Math.max(worst, Math.abs(analytic[i] - numeric) / scale);
            }
            expect(worst, `layer ${l} ${key} (seed ${seed})`).toBeLessThan(1e-3);
          }
        }
      }
    });
  }

  it(`scales with the denominator option and reuses a caller's runtime (seed ${seed})`, async () => {
    const rng = new Rng(seed + 13);
    const w = await tinyWithLora('denominator', cases[0][1], ['q_proj', 'down_proj'], rng);
    const { ids, targets, mask } = sequence(w, rng, 6);
    const runtime = new OrtRuntime({ provider: 'cpu', threads: 1 });
    try {
      const mean = await loraGradients(w, ids, targets, mask, { runtime });
      const half = await loraGradients(w, ids, targets, mask, { runtime, denominator: 2 * mean.denominator });
      expect(half.loss).toBeCloseTo(mean.loss / 2, 6);
      const a = mean.grads[1].get('down_proj')!.dB, b = half.grads[1].get('down_proj')!.dB;
      for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i] / 2, 6);
    } finally {
      await runtime.dispose();
    }
  });

  it('rejects bad inputs with a clear message', async () => {
    const rng = new Rng(seed + 17);
    const w = await tinyWithLora('bad', { layers: 1, hidden: 16, heads: 2, kvHeads: 2, intermediate: 16, vocab: 10 }, ['q_proj'], rng);
    const ids = Int32Array.from([1, 2, 3]);
    const ones = new Float32Array(3).fill(1);
    await expectUserError(loraGradients({ ...w, lora: null }, ids, ids, ones), /no LoRA adapter/);
    await expectUserError(loraGradients(w, ids, ids, new Float32Array(3)), /selects no position/);
    await expectUserError(loraGradients(w, ids, Int32Array.from([1, 2, 10]), ones), /target id 10 at position 2/);
    await expectUserError(loraGradients(w, ids, ids, new Float32Array(2)), /same length/);
    await expectUserError(loraGradients(w, new Int32Array(0), new Int32Array(0), new Float32Array(0)), /empty sequence/);
  });
});
