// The backward pass of one Llama-family decoder layer as an ONNX graph, for the LoRA
// parameters only (the backbone is frozen). Inputs: everything the forward graph
// (model/decoder-graph.ts) takes, under the same names, plus `dy` = ∂L/∂y [T, H]. Outputs:
// `dx` = ∂L/∂x [T, H] and, per LoRA module m, `m.lora_A.grad` [r, in] and `m.lora_B.grad`
// [out, r]. The forward is recomputed inside the graph from x (activation recomputation):
// between the forward and backward passes nothing but each layer's input x is kept.
//
// Notation, per row t of a [T, ·] matrix; ⊙ elementwise; row sums keep their axis.
//   linear  z = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ        with u = x·Aᵀ [T, r], dzB = dz·B [T, r]:
//           dx = dz·W + s·dzB·A,   dA = s·dzBᵀ·x [r, in],   dB = s·dzᵀ·u [out, r]
//   rmsnorm n = x·ι·w, ι = (mean(x²) + ε)^(−½):   with g = dn ⊙ w,
//           dx = ι·g − x·ι³·mean(g ⊙ x)          (∂ι/∂x_i = −ι³·x_i/H)
//   rotary  o = t⊙cos + rot(t)⊙sin, rot([t₁, t₂]) = [−t₂, t₁]  (a linear map, so dt = adjoint):
//           dt = do⊙cos + rotᵀ(do⊙sin),  rotᵀ([a₁, a₂]) = [a₂, −a₁]
//   attention per head  S = c·Q·Kᵀ + M, P = softmax(S), C = P·V:
//           dP = dC·Vᵀ,  dV = Pᵀ·dC,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dQ = c·dS·K,  dK = c·dSᵀ·Q
//           (masked entries have P = 0, hence dS = 0: the mask needs no special case)
//   GQA     K = repeat(K_kv): the gradient of a shared KV head is the sum over its group
//   SwiGLU  a = silu(g) ⊙ u, silu(g) = g·σ(g):   du = da ⊙ silu(g),
//           dg = da ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g)))
//   residuals  h = x + attn(x), y = h + mlp(h):   dh = dy + mlp'ᵀ·dy,  dx = dh + attn'ᵀ·dh
// Backbone weights are frozen unless `weightGrads` is asked for (pretraining), which adds
// `name.grad` outputs for every backbone input of the layer:
//   linear  dW = dzᵀ·x [out, in],  db = Σ_t dz_t;     rmsnorm  dw = Σ_t dn_t ⊙ x_t·ι_t
import type { ModelConfig } from '../io/hf-config';
import type { LinearModule } from '../io/targets';
import { declareLayerInputs, layerDimsKey, projectionDims, type DecoderGraphSpec } from '../model/decoder-graph';
import { OnnxGraph } from '../tensor/onnx-graph';

/** Output names of the LoRA gradients of module m. */
export function loraGradNames(m: LinearModule): { dA: string; dB: string } {
  return { dA: `${m}.lora_A.grad`, dB: `${m}.lora_B.grad` };
}

/** Output name of the gradient of a layer input (a decoder-graph weight name). */
export function gradName(input: string): string {
  return `${input}.grad`;
}

export interface BackwardOptions {
  /** Also output the gradients of the backbone weights (norms, projections, biases). */
  weightGrads: boolean;
}

export function decoderBackwardKey(config: ModelConfig, spec: DecoderGraphSpec, options: BackwardOptions = { weightGrads: false }): string {
  return `decoder-backward:${layerDimsKey(config)}:${spec.biases.join(',')}:${spec.lora.join(',')}:${spec.loraScaling}:${options.weightGrads ? 'full' : 'lora'}`;
}

export function buildDecoderBackwardGraph(config: ModelConfig, spec: DecoderGraphSpec, options: BackwardOptions = { weightGrads: false }): OnnxGraph {
  const { hiddenSize: H, numHeads: nH, numKvHeads: nKV, headDim: hd } = config;
  const s = spec.loraScaling;
  const g = new OnnxGraph('decoder_layer_backward');
  declareLayerInputs(g, config, spec);
  const { outDim, inDim } = projectionDims(config);
  g.input('dy', 'float32', ['T', H]);

  const f32 = (v: number) => g.constant('float32', [], [v]);
  const i64 = (values: number[]) => g.constant('int64', [values.length], values);
  const mul = (a: string, b: string) => g.op('Mul', [a, b]);
  const add = (a: string, b: string) => g.op('Add', [a, b]);
  const sub = (a: string, b: string) => g.op('Sub', [a, b]);
  const one = f32(1);

  // ---- recomputed forward, keeping what the backward needs ----
  const epsConst = f32(config.rmsNormEps);
  const rmsNorm = (x: string, w: string) => {
    const meanSq = g.op('ReduceMean', [mul(x, x)], { axes: [-1], keepdims: 1 });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [add(meanSq, epsConst)])]);
    return { inv, out: mul(mul(x, inv), w) };
  };
  const loraDown = new Map<LinearModule, string>();
  const linear = (x: string, m: LinearModule): string => {
    const base = g.op('Gemm', spec.biases.includes(m) ? [x, m, `${m}.bias`] : [x, m], { transB: 1 });
    if (!spec.lora.includes(m)) return base;
    const down = g.op('Gemm', [x, `${m}.lora_A`], { transB: 1 });
    loraDown.set(m, down);
    const up = g.op('Gemm', [down, `${m}.lora_B`], { transB: 1, alpha: { float: s } });
    return add(base, up);
  };
  const halfSplit = i64([hd / 2, hd / 2]);
  // [T, n·hd] → [n, T, hd] and back.
  const toHeads = (x: string, n: number) => g.op('Transpose', [g.op('Reshape', [x, i64([0, n, hd])])], { perm: [1, 0, 2] });
  const fromHeads = (x: string, n: number) => g.op('Reshape', [g.op('Transpose', [x], { perm: [1, 0, 2] }), i64([0, n * hd])]);
  const rope = (t: string) => {
    const [t1, t2] = g.node('Split', [t, halfSplit], { axis: -1 }, 2);
    return add(mul(t, 'cos'), mul(g.op('Concat', [g.op('Neg', [t2]), t1], { axis: -1 }), 'sin'));
  };
  const group = nH / nKV;
  const repeatKv = (x: string) => {
    if (group === 1) return x;
    const expanded = g.op('Expand', [g.op('Unsqueeze', [x, i64([1])]), i64([nKV, group, 1, 1])]);
    return g.op('Reshape', [expanded, i64([nH, -1, hd])]);
  };

  const norm1 = rmsNorm('x', 'input_layernorm');
  const n1 = norm1.out;
  const Q = rope(toHeads(linear(n1, 'q_proj'), nH));
  const K = repeatKv(rope(toHeads(linear(n1, 'k_proj'), nKV)));
  const V = repeatKv(toHeads(linear(n1, 'v_proj'), nKV));
  const c = f32(1 / Math.sqrt(hd));
  const scores = add(mul(g.op('MatMul', [Q, g.op('Transpose', [K], { perm: [0, 2, 1] })]), c), 'mask');
  const P = g.op('Softmax', [scores], { axis: -1 });
  const merged = fromHeads(g.op('MatMul', [P, V]), nH);
  const h = add('x', linear(merged, 'o_proj'));
  const norm2 = rmsNorm(h, 'post_attention_layernorm');
  const n2 = norm2.out;
  const gate = linear(n2, 'gate_proj');
  const sig = g.op('Sigmoid', [gate]);
  const silu = mul(gate, sig);
  const up = linear(n2, 'up_proj');
  const act = mul(silu, up);

  // ---- backward ----
  /** ∂L/∂input of a linear module given dz; emits the LoRA gradients as graph outputs. */
  const axis0 = options.weightGrads ? i64([0]) : '';
  const linearBack = (x: string, m: LinearModule, dz: string): string => {
    const base = g.op('Gemm', [dz, m]);
    if (options.weightGrads) {
      g.op('Gemm', [dz, x], { transA: 1 }, gradName(m));
      g.output(gradName(m), 'float32', [outDim[m], inDim[m]]);
      if (spec.biases.includes(m)) {
        g.op('ReduceSum', [dz, axis0], { keepdims: 0 }, gradName(`${m}.bias`));
        g.output(gradName(`${m}.bias`), 'float32', [outDim[m]]);
      }
    }
    if (!spec.lora.includes(m)) return base;
    const { dA, dB } = loraGradNames(m);
    const dzB = g.op('Gemm', [dz, `${m}.lora_B`]);
    g.op('Gemm', [dzB, x], { transA: 1, alpha: { float: s } }, dA);
    // (down_proj's output is not recomputed, so its x·Aᵀ is made here.)
    const down = loraDown.get(m) ?? g.op('Gemm', [x, `${m}.lora_A`], { transB: 1 });
    g.op('Gemm', [dz, down], { transA: 1, alpha: { float: s } }, dB);
    g.output(dA, 'float32', ['r', inDim[m]]);
    g.output(dB, 'float32', [outDim[m], 'r']);
    return add(base, g.op('Gemm', [dzB, `${m}.lora_A`], { alpha: { float: s } }));
  };
  const rmsNormBack = (x: string, inv: string, w: string, dn: string): string => {
    if (options.weightGrads) {
      g.op('ReduceSum', [mul(dn, mul(x, inv)), axis0], { keepdims: 0 }, gradName(w));
      g.output(gradName(w), 'float32', [H]);
    }
    const gw = mul(dn, w);
    const m = g.op('ReduceMean', [mul(gw, x)], { axes: [-1], keepdims: 1 });
    return mul(inv, sub(gw, mul(mul(x, mul(inv, inv)), m)));
  };
  const ropeBack = (d: string) => {
    const [a1, a2] = g.node('Split', [mul(d, 'sin'), halfSplit], { axis: -1 }, 2);
    return add(mul(d, 'cos'), g.op('Concat', [a2, g.op('Neg', [a1])], { axis: -1 }));
  };
  const unrepeatKv = (d: string) => {
    if (group === 1) return d;
    return g.op('ReduceSum', [g.op('Reshape', [d, i64([nKV, group, -1, hd])]), i64([1])], { keepdims: 0 });
  };

  // MLP: y = h + down(silu(gate(n2)) ⊙ up(n2)).
  const dact = linearBack(act, 'down_proj', 'dy');
  const dup = mul(dact, silu);
  const dsilu = mul(sig, add(one, mul(gate, sub(one, sig))));
  const dgate = mul(mul(dact, up), dsilu);
  const dn2 = add(linearBack(n2, 'gate_proj', dgate), linearBack(n2, 'up_proj', dup));
  const dh = add('dy', rmsNormBack(h, norm2.inv, 'post_attention_layernorm', dn2));

  // Attention: h = x + o_proj(merged).
  const dC = toHeads(linearBack(merged, 'o_proj', dh), nH);
  const dP = g.op('MatMul', [dC, g.op('Transpose', [V], { perm: [0, 2, 1] })]);
  const dV = g.op('MatMul', [g.op('Transpose', [P], { perm: [0, 2, 1] }), dC]);
  const rowDot = g.op('ReduceSum', [mul(dP, P), i64([-1])], { keepdims: 1 });
  const dS = mul(mul(P, sub(dP, rowDot)), c);
  const dQ = g.op('MatMul', [dS, K]);
  const dK = g.op('MatMul', [g.op('Transpose', [dS], { perm: [0, 2, 1] }), Q]);
  const dq = fromHeads(ropeBack(dQ), nH);
  const dk = fromHeads(ropeBack(unrepeatKv(dK)), nKV);
  const dv = fromHeads(unrepeatKv(dV), nKV);
  const dn1 = add(add(linearBack(n1, 'q_proj', dq), linearBack(n1, 'k_proj', dk)), linearBack(n1, 'v_proj', dv));
  g.op('Add', [dh, rmsNormBack('x', norm1.inv, 'input_layernorm', dn1)], {}, 'dx');
  g.output('dx', 'float32', ['T', H]);
  return g;
}
