// The ONNX forward pass against a float64 reference forward written plainly here, on tiny
// generated llama (GQA), qwen2 (q/k/v biases, tied embeddings) and mistral (sliding window)
// models, with and without a LoRA branch.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../io/hf-config';
import { makeTempDir, writeTinyModel, type TinyModel, type TinyModelOptions } from '../../test-support/tiny-model';
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

type Lora = Map<string, { a: Float32Array; b: Float32Array; r: number }>;

/** Float64 reference of HF's Llama forward (eager attention), logits [T, V]. */
function referenceLogits(m: TinyModel, c: ModelConfig, ids: number[], lora: Lora | null, scaling: number): Float64Array {
  const w = (name: string) => m.tensors.get(name)?.values;
  const H = c.hiddenSize, hd = c.headDim, nH = c.numHeads, nKV = c.numKvHeads, T = ids.length, V = c.vocabSize;
  const rms = (x: Float64Array, g: Float32Array) => {
    const out = new Float64Array(x.length);
    for (let t = 0; t < T; t++) {
      let ss = 0;
      for (let i = 0; i < H; i++) ss += x[t * H + i] ** 2;
      const inv = 1 / Math.sqrt(ss / H + c.rmsNormEps);
      for (let i = 0; i < H; i++) out[t * H + i] = x[t * H + i] * inv * g[i];
    }
    return out;
  };
  const linear = (x: Float64Array, name: string, inDim: number, outDim: number) => {
    const W = w(`${name}.weight`)!, bias = w(`${name}.bias`);
    const l = lora?.get(name);
    const out = new Float64Array(T * outDim);
    for (let t = 0; t < T; t++) {
      const down = l ? new Float64Array(l.r) : null;
      if (l) for (let k = 0; k < l.r; k++) for (let i = 0; i < inDim; i++) down![k] += x[t * inDim + i] * l.a[k * inDim + i];
      for (let o = 0; o < outDim; o++) {
        let s = bias ? bias[o] : 0;
        for (let i = 0; i < inDim; i++) s += x[t * inDim + i] * W[o * inDim + i];
        if (l) for (let k = 0; k < l.r; k++) s += scaling * down![k] * l.b[o * l.r + k];
        out[t * outDim + o] = s;
      }
    }
    return out;
  };
  const rope = (x: Float64Array, heads: number) => {
    const out = new Float64Array(x.length);
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < hd; i++) {
          const f = i % (hd / 2);
          const angle = t / c.ropeTheta ** ((2 * f) / hd);
          const rotated = i < hd / 2 ? -x[t * heads * hd + h * hd + i + hd / 2] : x[t * heads * hd + h * hd + i - hd / 2];
          out[t * heads * hd + h * hd + i] = x[t * heads * hd + h * hd + i] * Math.cos(angle) + rotated * Math.sin(angle);
        }
      }
    }
    return out;
  };
  const window = typeof c.raw.sliding_window === 'number' ? c.raw.sliding_window : Infinity;
  let x = new Float64Array(T * H);
  ids.forEach((id, t) => { for (let i = 0; i < H; i++) x[t * H + i] = w('model.embed_tokens.weight')![id * H + i]; });
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    const n1 = rms(x, w(`${p}.input_layernorm.weight`)!);
    const q = rope(linear(n1, `${p}.self_attn.q_proj`, H, nH * hd), nH);
    const k = rope(linear(n1, `${p}.self_attn.k_proj`, H, nKV * hd), nKV);
    const v = linear(n1, `${p}.self_attn.v_proj`, H, nKV * hd);
    const ctx = new Float64Array(T * nH * hd);
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / (nH / nKV));
      for (let i = 0; i < T; i++) {
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          if (i - j >= window) { scores.push(-Infinity); continue; }
          let s = 0;
          for (let d = 0; d < hd; d++) s += q[i * nH * hd + h * hd + d] * k[j * nKV * hd + kvh * hd + d];
          scores.push(s / Math.sqrt(hd));
        }
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < hd; d++) {
          let s = 0;
          for (let j = 0; j <= i; j++) s += (e[j] / z) * v[j * nKV * hd + kvh * hd + d];
          ctx[i * nH * hd + h * hd + d] = s;
        }
      }
    }
    const attn = linear(ctx, `${p}.self_attn.o_proj`, nH * hd, H);
    const h1 = x.map((v0, i) => v0 + attn[i]);
    const n2 = rms(h1, w(`${p}.post_attention_layernorm.weight`)!);
    const gate = linear(n2, `${p}.mlp.gate_proj`, H, c.intermediateSize);
    const up = linear(n2, `${p}.mlp.up_proj`, H, c.intermediateSize);
    const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
    const down = linear(act, `${p}.mlp.down_proj`, c.intermediateSize, H);
    x = h1.map((v0, i) => v0 + down[i]);
  }
  const n = rms(x, w('model.norm.weight')!);
  const head = c.tieWordEmbeddings ? w('model.embed_tokens.weight')! : w('lm_head.weight')!;
  const logits = new Float64Array(T * V);
  for (let t = 0; t < T; t++) for (let o = 0; o < V; o++) {
    let s = 0;
    for (let i = 0; i < H; i++) s += n[t * H + i] * head[o * H + i];
    logits[t * V + o] = s;
  }
  return logits;
}

function maxRelError(ours: Float32Array, ref: Float64Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(ours[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  return num / den;
}

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
      const model = await writeTinyModel(dir, { ...options, seed, dtype: 'F32', std: 0.3 });
      const weights = await loadModelWeights(dir);
      const config = parseModelConfig(model.config);
      const rng = new Rng(seed);
      const ids = Array.from({ length: 12 }, () => rng.nextUint32() % config.vocabSize);
      const transformer = new Transformer(weights);
      try {
        const ours = await transformer.logits(Int32Array.from(ids));
        const ref = referenceLogits(model, config, ids, null, 0);
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
    const options: TinyModelOptions = { architecture: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 40, seed, dtype: 'F32', std: 0.3 };
    const model = await writeTinyModel(dir, options);
    const config = parseModelConfig(model.config);
    const base = await loadModelWeights(dir);
    const rng = new Rng(seed + 1);
    const r = 3, scaling = 2;
    const lora: Lora = new Map();
    const layers = base.layers.map((layer, l) => {
      const tensors = new Map(layer.tensors), shapes = new Map(layer.shapes);
      for (const m of ['q_proj', 'v_proj', 'down_proj'] as const) {
        const [out, inp] = layer.shapes.get(m)!;
        const a = rng.fillNormal(new Float32Array(r * inp), 0.2) as Float32Array;
        const b = rng.fillNormal(new Float32Array(out * r), 0.2) as Float32Array;
        tensors.set(`${m}.lora_A`, a).set(`${m}.lora_B`, b);
        shapes.set(`${m}.lora_A`, [r, inp]).set(`${m}.lora_B`, [out, r]);
        lora.set(`model.layers.${l}.${m === 'down_proj' ? 'mlp' : 'self_attn'}.${m}`, { a, b, r });
      }
      return { tensors, shapes };
    });
    const withLora: WeightSet = { ...base, layers, lora: { modules: ['q_proj', 'v_proj', 'down_proj'], scaling } };
    const ids = Array.from({ length: 10 }, () => rng.nextUint32() % config.vocabSize);
    const transformer = new Transformer(withLora);
    try {
      const ours = await transformer.logits(Int32Array.from(ids));
      const ref = referenceLogits(model, config, ids, lora, scaling);
      expect(maxRelError(ours, ref)).toBeLessThan(1e-5);
      expect(maxRelError(ours, referenceLogits(model, config, ids, null, 0))).toBeGreaterThan(1e-2);
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
