// Test support: a float64 reference forward of a Llama-family model written plainly
// (HF's eager attention, default rotary), independent of the ONNX graphs, for finite-
// difference checks of the gradients. Parameters are looked up by the decoder-graph input
// names of a WeightSet's layers, so a test perturbs one entry by passing an override.
import type { ModelConfig } from '../engine/io/hf-config';
import type { LinearModule } from '../engine/io/targets';
import type { WeightSet } from '../engine/model/weights';
import type { Rng } from '../engine/util/random';

type Vec = ArrayLike<number>;
export type LayerParams = (name: string) => Vec | undefined;

const MODULES_IN_OUT = (c: ModelConfig): Record<LinearModule, [number, number]> => {
  const q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim, H = c.hiddenSize, I = c.intermediateSize;
  return { q_proj: [H, q], k_proj: [H, kv], v_proj: [H, kv], o_proj: [q, H], gate_proj: [H, I], up_proj: [H, I], down_proj: [I, H] };
};

/** One decoder layer in float64: y [T, H] from x [T, H]. */
export function referenceLayer(c: ModelConfig, p: LayerParams, scaling: number, x: Float64Array, T: number): Float64Array {
  const H = c.hiddenSize, hd = c.headDim, nH = c.numHeads, nKV = c.numKvHeads;
  const dims = MODULES_IN_OUT(c);
  const rms = (v: Float64Array, g: Vec) => {
    const out = new Float64Array(v.length);
    for (let t = 0; t < T; t++) {
      let ss = 0;
      for (let i = 0; i < H; i++) ss += v[t * H + i] ** 2;
      const inv = 1 / Math.sqrt(ss / H + c.rmsNormEps);
      for (let i = 0; i < H; i++) out[t * H + i] = v[t * H + i] * inv * g[i];
    }
    return out;
  };
  const linear = (v: Float64Array, m: LinearModule) => {
    const [inDim, outDim] = dims[m];
    const W = p(m)!, bias = p(`${m}.bias`), A = p(`${m}.lora_A`), B = p(`${m}.lora_B`);
    const r = A ? A.length / inDim : 0;
    const out = new Float64Array(T * outDim);
    for (let t = 0; t < T; t++) {
      const down = new Float64Array(r);
      for (let k = 0; k < r; k++) for (let i = 0; i < inDim; i++) down[k] += v[t * inDim + i] * A![k * inDim + i];
      for (let o = 0; o < outDim; o++) {
        let s = bias ? bias[o] : 0;
        for (let i = 0; i < inDim; i++) s += v[t * inDim + i] * W[o * inDim + i];
        for (let k = 0; k < r; k++) s += scaling * down[k] * B![o * r + k];
        out[t * outDim + o] = s;
      }
    }
    return out;
  };
  const rope = (v: Float64Array, heads: number) => {
    const out = new Float64Array(v.length);
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < hd; i++) {
          const f = i % (hd / 2);
          const angle = t / c.ropeTheta ** ((2 * f) / hd);
          const base = t * heads * hd + h * hd;
          const rotated = i < hd / 2 ? -v[base + i + hd / 2] : v[base + i - hd / 2];
          out[base + i] = v[base + i] * Math.cos(angle) + rotated * Math.sin(angle);
        }
      }
    }
    return out;
  };
  const window = typeof c.raw.sliding_window === 'number' && c.raw.sliding_window > 0 ? c.raw.sliding_window : Infinity;
  const n1 = rms(x, p('input_layernorm')!);
  const q = rope(linear(n1, 'q_proj'), nH);
  const k = rope(linear(n1, 'k_proj'), nKV);
  const v = linear(n1, 'v_proj');
  const ctx = new Float64Array(T * nH * hd);
  for (let h = 0; h < nH; h++) {
    const kvh = Math.floor(h / (nH / nKV));
    for (let i = 0; i < T; i++) {
      const scores: number[] = [];
      for (let j = 0; j <= i; j++) {
        if (i - j >= window) {
          scores.push(-Infinity);
          continue;
        }
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
  const attn = linear(ctx, 'o_proj');
  const h1 = x.map((x0, i) => x0 + attn[i]);
  const n2 = rms(h1, p('post_attention_layernorm')!);
  const gate = linear(n2, 'gate_proj');
  const up = linear(n2, 'up_proj');
  const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
  const down = linear(act, 'down_proj');
  return h1.map((h0, i) => h0 + down[i]);
}

/** Parameter overrides: layers (layer → name → values), embed, norm, lm_head. */
export interface Overrides {
  layers?: Map<number, Map<string, Vec>>;
  embed?: Vec;
  norm?: Vec;
  /** When the weight set ties lm_head to the embedding, an embed override applies to both. */
  lmHead?: Vec;
}

/** Σ_t mask_t·nll_t / Σ_t mask_t of the whole model in float64. */
export function referenceLoss(w: WeightSet, ids: ArrayLike<number>, targets: ArrayLike<number>, mask: ArrayLike<number>, overrides: Overrides = {}): number {
  const c = w.config;
  const H = c.hiddenSize, T = ids.length;
  const embed = overrides.embed ?? w.embed;
  const lmHead = overrides.lmHead ?? (w.lmHead === w.embed ? embed : w.lmHead);
  let x: Float64Array = new Float64Array(T * H);
  for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) x[t * H + i] = embed[ids[t] * H + i];
  for (let l = 0; l < w.layers.length; l++) {
    const o = overrides.layers?.get(l);
    x = referenceLayer(c, (name) => o?.get(name) ?? w.layers[l].tensors.get(name), w.lora?.scaling ?? 0, x, T);
  }
  return referenceHeadLoss(c, overrides.norm ?? w.norm, lmHead, x, targets, mask);
}

/** Logits [T, V] of the whole model in float64 (HF's Llama forward, eager attention). */
export function referenceLogits(w: WeightSet, ids: ArrayLike<number>): Float64Array {
  const c = w.config;
  const H = c.hiddenSize, V = c.vocabSize, T = ids.length;
  let x: Float64Array = new Float64Array(T * H);
  for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) x[t * H + i] = w.embed[ids[t] * H + i];
  for (const layer of w.layers) x = referenceLayer(c, (name) => layer.tensors.get(name), w.lora?.scaling ?? 0, x, T);
  const logits = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let i = 0; i < H; i++) ss += x[t * H + i] ** 2;
    const inv = 1 / Math.sqrt(ss / H + c.rmsNormEps);
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < H; i++) s += x[t * H + i] * inv * w.norm[i] * w.lmHead[v * H + i];
      logits[t * V + v] = s;
    }
  }
  return logits;
}

/** The head's masked mean NLL in float64 from the final hidden states x [T, H]. */
export function referenceHeadLoss(c: ModelConfig, norm: Vec, lmHead: Vec, x: Float64Array, targets: ArrayLike<number>, mask: ArrayLike<number>): number {
  const H = c.hiddenSize, V = c.vocabSize, T = targets.length;
  let total = 0, count = 0;
  for (let t = 0; t < T; t++) {
    if (!(mask[t] > 0)) continue;
    let ss = 0;
    for (let i = 0; i < H; i++) ss += x[t * H + i] ** 2;
    const inv = 1 / Math.sqrt(ss / H + c.rmsNormEps);
    const logits = new Float64Array(V);
    for (let o = 0; o < V; o++) {
      let s = 0;
      for (let i = 0; i < H; i++) s += x[t * H + i] * inv * norm[i] * lmHead[o * H + i];
      logits[o] = s;
    }
    const mx = Math.max(...logits);
    let z = 0;
    for (let o = 0; o < V; o++) z += Math.exp(logits[o] - mx);
    total += mask[t] * (mx + Math.log(z) - logits[targets[t]]);
    count += mask[t];
  }
  return total / count;
}

/** A copy of a weight set with random (nonzero) LoRA A and B on the given modules. */
export function withRandomLora(base: WeightSet, modules: LinearModule[], r: number, scaling: number, rng: Rng, std = 0.2): WeightSet {
  const layers = base.layers.map((layer) => {
    const tensors = new Map(layer.tensors), shapes = new Map(layer.shapes);
    for (const m of modules) {
      const [out, inp] = layer.shapes.get(m)!;
      tensors.set(`${m}.lora_A`, rng.fillNormal(new Float32Array(r * inp), std) as Float32Array);
      tensors.set(`${m}.lora_B`, rng.fillNormal(new Float32Array(out * r), std) as Float32Array);
      shapes.set(`${m}.lora_A`, [r, inp]).set(`${m}.lora_B`, [out, r]);
    }
    return { tensors, shapes };
  });
  return { ...base, layers, lora: { modules, scaling } };
}
