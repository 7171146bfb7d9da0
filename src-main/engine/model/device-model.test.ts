// The model on a device's neural-network operations against the float64 reference forward
// (test-support/reference-forward, HF's Llama forward), twice: on CUDA (GPU machine; skipped
// elsewhere with the reason), and everywhere on the CUDA operations (tensor/cuda-nn.ts) over
// a JavaScript model of the addon's kernels (test-support/fake-cuda-native), which checks
// their bookkeeping — buffers, offsets, strides, blocks, frees — on the CPU;
// on tiny generated llama (GQA), qwen2 (biases, tied embeddings) and mistral (sliding window)
// models: logits and per-position NLL, with and without LoRA, with the attention and the
// head split into many blocks, several sequences in one batch, and packed 2/3/4-bit and
// q4_0 backbones dequantized by the kernels. Fresh random weights each run (seed printed).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { frobeniusRelError, maxRelError } from '../../test-support/max-relative-error';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { neuralBackends, type Backend } from '../../test-support/neural-backends';
import { referenceLogits, withRandomLora } from '../../test-support/reference-forward';
import { makeTempDir, writeTinyModel, type TinyModelOptions } from '../../test-support/tiny-model';
import type { LinearModule } from '../io/targets';
import { BlockQuantizer, type QuantSpec } from '../quant/blockwise';
import { codebookLevels } from '../quant/codebook';
import { packCodes } from '../tensor/packing';
import type { NeuralOptions } from '../tensor/nn';
import { loraGradients } from '../grad/lora-gradients';
import { LLAMA_MODULES } from '../io/targets';
import { Rng } from '../util/random';
import { DeviceModel } from './device-model';
import { loadModelWeights, type WeightSet } from './weights';

const seed = Date.now() % 1_000_000;

/** −log softmax(row)[target] in float64. */
function refNll(logits: Float64Array, V: number, t: number, target: number): number {
  const row = logits.subarray(t * V, (t + 1) * V);
  const mx = Math.max(...row);
  return mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0)) - row[target];
}

/** The weight set with each projection quantized: packed for the device, its exact Q as the reference's tensor. */
function quantizedCopy(base: WeightSet, specOf: (l: number, m: LinearModule) => QuantSpec | null): WeightSet {
  const layers = base.layers.map((layer, l) => {
    const tensors = new Map(layer.tensors);
    const packed = new Map(layer.packed ?? []);
    for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as LinearModule[]) {
      const spec = specOf(l, m);
      if (!spec) continue;
      const quantizer = new BlockQuantizer(spec);
      const q = quantizer.quantize(layer.tensors.get(m)!);
      tensors.set(m, quantizer.dequantize(q));
      packed.set(m, { packed: packCodes(q.codes, spec.bits), absmax: q.absmax, levels: codebookLevels(spec.kind, spec.bits), bits: spec.bits, blockSize: spec.blockSize });
    }
    return { ...layer, tensors, packed };
  });
  return { ...base, layers };
}

const cases: Array<[string, TinyModelOptions]> = [
  ['llama with grouped-query attention', { architecture: 'llama', layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 96, vocab: 50 }],
  ['qwen2 with q/k/v biases and tied embeddings', { architecture: 'qwen2', layers: 2, hidden: 64, heads: 4, kvHeads: 1, intermediate: 80, vocab: 36, tied: true }],
  ['mistral with a sliding window shorter than the sequence', { architecture: 'mistral', layers: 2, hidden: 32, heads: 2, kvHeads: 2, intermediate: 40, vocab: 30, configOverrides: { sliding_window: 5 } }],
];

const backends = neuralBackends();

for (const [name, enabled, skipped, open] of backends) (enabled ? describe : describe.skip)(`DeviceModel on ${name} vs the float64 reference${skipped}`, () => {
  let tmp: string;
  let device: Backend;
  beforeAll(async () => {
    tmp = await makeTempDir('loftq-device-model-');
    device = open();
  });
  afterAll(async () => {
    // Every test disposed its models: nothing may be left allocated.
    expect(device?.live() ?? 0).toBe(0);
    await device?.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const load = async (label: string, options: TinyModelOptions) => {
    const dir = join(tmp, label.split(' ')[0]);
    // Small weights keep activations where float32 vs float64 is a fair test.
    await writeTinyModel(dir, { ...options, seed, dtype: 'F32', std: 0.3 });
    return loadModelWeights(dir);
  };
  const logitsOn = async (weights: WeightSet, ids: number[], precision: 'fp32' | 'bf16', limits?: NeuralOptions) => {
    const model = DeviceModel.load(weights, device.neuralOps(precision, limits), 'test');
    try {
      return await model.logits(Int32Array.from(ids));
    } finally {
      await model.dispose();
    }
  };

  for (const [label, options] of cases) {
    it(`${label}: fp32 logits, plain and with LoRA, whole and in blocks (seed ${seed})`, async () => {
      const base = await load(label, options);
      const rng = new Rng(seed);
      const ids = Array.from({ length: 13 }, () => rng.nextUint32() % base.config.vocabSize);
      const lora = withRandomLora(base, ['q_proj', 'v_proj', 'o_proj', 'down_proj'], 3, 0.75, rng);
      for (const weights of [base, lora]) {
        const ref = referenceLogits(weights, ids);
        // float32 products of tiny sizes through two layers: ~1e-6; 1e-5 leaves room.
        expect(maxRelError(await logitsOn(weights, ids, 'fp32'), ref)).toBeLessThan(1e-5);
        // Blocks of 1–2 query rows and of 2 logit rows must give the same numbers.
        const blocked = await logitsOn(weights, ids, 'fp32', { scoreBlockBytes: 1, logitBlockBytes: 2 * weights.config.vocabSize * 4 });
        expect(maxRelError(blocked, ref)).toBeLessThan(1e-5);
      }
    });

    it(`${label}: bf16 logits within the bf16 tolerance (seed ${seed})`, async () => {
      const weights = await load(label, options);
      const rng = new Rng(seed + 1);
      const ids = Array.from({ length: 13 }, () => rng.nextUint32() % weights.config.vocabSize);
      const err = maxRelError(await logitsOn(weights, ids, 'bf16'), referenceLogits(weights, ids));
      // Every product operand is rounded to bf16 (relative 2⁻⁹ ≈ 0.2%); over two layers of
      // seven products and the head those roundings add up to ~1%, 3% of the largest logit bounds it.
      expect(err).toBeLessThan(3e-2);
      expect(err).toBeGreaterThan(0); // bf16 really was used
    });
  }

  it(`bf16 attention over several 64-key blocks (blocked and fused), grouped heads, with and without a window (seed ${seed})`, async () => {
    for (const [label, options] of [
      ['llama-hd32', { architecture: 'llama', layers: 2, hidden: 128, heads: 4, kvHeads: 2, intermediate: 96, vocab: 40, configOverrides: { max_position_embeddings: 256 } }],
      ['mistral-hd64', { architecture: 'mistral', layers: 1, hidden: 128, heads: 2, kvHeads: 1, intermediate: 64, vocab: 30, configOverrides: { sliding_window: 70, max_position_embeddings: 256 } }],
    ] as Array<[string, TinyModelOptions]>) {
      const weights = await load(label, options);
      const rng = new Rng(seed + 4);
      // 150 positions: two full blocks of 64 and a partial one; the window crosses block edges.
      const ids = Array.from({ length: 150 }, () => rng.nextUint32() % weights.config.vocabSize);
      const ref = referenceLogits(weights, ids);
      expect(maxRelError(await logitsOn(weights, ids, 'bf16', { attention: 'blocked' }), ref), label).toBeLessThan(3e-2);
      expect(maxRelError(await logitsOn(weights, ids, 'bf16', { attention: 'fused' }), ref), label).toBeLessThan(3e-2);
      expect(maxRelError(await logitsOn(weights, ids, 'fp32', { scoreBlockBytes: 1 }), ref), label).toBeLessThan(1e-5);
    }
  });

  for (const [label, options] of cases) {
    it(`${label}: LoRA gradients of a batch equal the CPU backward's, fp32 and bf16 (seed ${seed})`, async () => {
      const base = await load(label, options);
      const rng = new Rng(seed + 5);
      const weights = withRandomLora(base, [...LLAMA_MODULES], 3, 2, rng);
      const V = weights.config.vocabSize, T = 11, B = 2;
      const ids = Int32Array.from({ length: B * T }, () => rng.nextUint32() % V);
      const targets = Int32Array.from({ length: B * T }, () => rng.nextUint32() % V);
      // One position left out, one weighed double; the denominator is the batch's total weight.
      const mask = new Float32Array(B * T).fill(1);
      mask[3] = 0;
      mask[T + 5] = 2;
      const denominator = mask.reduce((a, v) => a + v, 0);
      // The CPU (ONNX) backward, sequence by sequence, is the reference (it is checked against
      // finite differences and PyTorch elsewhere).
      const ref = await Promise.all(
        [0, 1].map((b) => loraGradients(weights, ids.subarray(b * T, (b + 1) * T), targets.subarray(b * T, (b + 1) * T), mask.subarray(b * T, (b + 1) * T), { denominator })),
      );
      for (const [precision, bound] of [['fp32', 1e-4], ['bf16', 0.1]] as const) {
        const model = DeviceModel.load(weights, device.neuralOps(precision, { scoreBlockBytes: 1, logitBlockBytes: 3 * V * 6 }), 'test');
        const grads = model.loraGradients();
        try {
          const c = Float32Array.from(mask, (m) => m / denominator);
          const r = await model.loraBackward(ids, targets, c, B, grads);
          const refLoss = ref[0].loss + ref[1].loss;
          expect(Math.abs(r.loss - refLoss) / refLoss, `${precision} loss`).toBeLessThan(precision === 'fp32' ? 1e-5 : 1e-2);
          for (let l = 0; l < weights.layers.length; l++) {
            for (const m of LLAMA_MODULES) {
              for (const which of ['dA', 'dB'] as const) {
                const got = await model.download(grads[l][m]![which]);
                const want = Float64Array.from(ref[0].grads[l].get(m)![which], (v, i) => v + ref[1].grads[l].get(m)![which][i]);
                // fp32: within 1e-4 of the tensor's largest entry (float32 sums in another order).
                // bf16: every operand of the chain of products from the head down to a layer's
                // factors is rounded (2⁻⁹ each), and these tiny tensors sum few terms; so the
                // Frobenius-relative error, ≤ 0.036 over 500 tensors of 6 seeds, bounded by 0.1.
                const err = precision === 'fp32' ? maxRelError(got, want) : frobeniusRelError(got, want);
                expect(err, `${precision} layer ${l} ${m} ${which}`).toBeLessThan(bound);
              }
            }
          }
        } finally {
          for (const layer of grads) for (const g of Object.values(layer)) {
            g!.dA.dispose();
            g!.dB.dispose();
          }
          await model.dispose();
        }
      }
    });
  }

  it(`several sequences in one batch give each its own NLL (seed ${seed})`, async () => {
    const [label, options] = cases[0];
    const weights = await load(label, options);
    const rng = new Rng(seed + 2);
    const V = weights.config.vocabSize, T = 9, B = 3;
    const seqs = Array.from({ length: B }, () => Array.from({ length: T + 1 }, () => rng.nextUint32() % V));
    const ids = Int32Array.from(seqs.flatMap((s) => s.slice(0, T)));
    const targets = Int32Array.from(seqs.flatMap((s) => s.slice(1)));
    const model = DeviceModel.load(weights, device.neuralOps('fp32', { scoreBlockBytes: 1 }), 'test');
    try {
      const nll = await model.nll(ids, targets, undefined, B);
      for (let b = 0; b < B; b++) {
        const ref = referenceLogits(weights, seqs[b].slice(0, T));
        for (let t = 0; t < T; t++) expect(Math.abs(nll[b * T + t] - refNll(ref, V, t, seqs[b][t + 1]))).toBeLessThan(2e-5);
      }
      await expect(model.nll(ids.subarray(1), targets.subarray(1), undefined, B)).rejects.toThrow(/do not split into 3 sequences/);
      await expect(model.nll(ids, Int32Array.from(targets, () => V), undefined, B)).rejects.toThrow(/outside the vocabulary/);
    } finally {
      await model.dispose();
    }
  });

  it(`packed 2-, 3- and 4-bit NF, uniform and q4_0 backbones are dequantized exactly (seed ${seed})`, async () => {
    const [label, options] = cases[0];
    const base = await load(label, options);
    const specs: QuantSpec[] = [
      { kind: 'nf', bits: 2, blockSize: 64 },
      { kind: 'nf', bits: 3, blockSize: 64 },
      { kind: 'nf', bits: 4, blockSize: 32 },
      { kind: 'uniform', bits: 3, blockSize: 16 },
      { kind: 'ggml', bits: 4, blockSize: 32 },
    ];
    // Mixed: each projection of each layer gets one of the specs; one stays dense.
    let i = 0;
    const weights = quantizedCopy(base, (l, m) => (l === 1 && m === 'up_proj' ? null : specs[i++ % specs.length]));
    const rng = new Rng(seed + 3);
    const ids = Array.from({ length: 11 }, () => rng.nextUint32() % base.config.vocabSize);
    expect(maxRelError(await logitsOn(weights, ids, 'fp32'), referenceLogits(weights, ids))).toBeLessThan(1e-5);
    const model = DeviceModel.load(weights, device.neuralOps('bf16'), 'test');
    try {
      // Packed weights take bits/8 bytes per weight plus their absmax, not 2 or 4.
      const dense = DeviceModel.load(base, device.neuralOps('bf16'), 'test');
      expect(model.weightBytes).toBeLessThan(dense.weightBytes);
      await dense.dispose();
    } finally {
      await model.dispose();
    }
  });
});
