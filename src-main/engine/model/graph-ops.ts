// The layer's and the head's operations as ONNX nodes, forward and backward halves: values are
// graph value names, and the CPU's graphs (decoder-graph.ts, head-graph.ts) are the layer.ts
// and head.ts definitions run over these. A backward half reads what its forward half made in
// the same graph (the norm's 1/rms, attention's heads and probabilities, the LoRA branch's
// x·Aᵀ, SwiGLU's sigmoid): a backward graph records the forward from the layer input first.
// Parameter gradients become graph outputs named gradName(weight): the LoRA factors' when the
// module has a branch, and with `weightGrads` (pretraining) every weight's.
//
// Notation, per row t of a [T, ·] matrix; ⊙ elementwise; row sums keep their axis.
//   linear  z = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ        with u = x·Aᵀ [T, r], dzB = dz·B [T, r]:
//           dx = dz·W + s·dzB·A,   dA = s·dzBᵀ·x [r, in],   dB = s·dzᵀ·u [out, r]
//           dW = dzᵀ·x [out, in],  db = Σ_t dz_t
//   rmsnorm n = x·ι·w, ι = (mean(x²) + ε)^(−½):   with g = dn ⊙ w,
//           dx = ι·g − x·ι³·mean(g ⊙ x)          (∂ι/∂x_i = −ι³·x_i/H),   dw = Σ_t dn_t ⊙ x_t·ι_t
//   rotary  o = t⊙cos + rot(t)⊙sin, rot([t₁, t₂]) = [−t₂, t₁]  (a linear map, so dt = adjoint):
//           dt = do⊙cos + rotᵀ(do⊙sin),  rotᵀ([a₁, a₂]) = [a₂, −a₁]
//   attention per head  S = c·Q·Kᵀ + M, P = softmax(S), C = P·V:
//           dP = dC·Vᵀ,  dV = Pᵀ·dC,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dQ = c·dS·K,  dK = c·dSᵀ·Q
//           (masked entries have P = 0, hence dS = 0: the mask needs no special case)
//   GQA     K = repeat(K_kv): the gradient of a shared KV head is the sum over its group
//   SwiGLU  a = silu(g) ⊙ u, silu(g) = g·σ(g):   du = da ⊙ silu(g),
//           dg = da ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g)))
//   head    z = n·lm_headᵀ, nll_t = −log softmax(z_t)[target_t], L = Σ_t c_t·nll_t:
//           dz = c ⊙ (softmax − onehot),  dn = dz·lm_head,  dlm_head = dzᵀ·n
import type { ModelConfig } from '../io/hf-config';
import type { LinearModule } from '../io/targets';
import type { OnnxGraph } from '../tensor/onnx-graph';
import type { HeadOps } from './head';
import type { LayerBackwardOps, LayerNormName, LayerOps } from './layer';

/** Which graph variant: biased modules, LoRA modules, and whether weights get gradients. */
export interface GraphOpsSpec {
  biases: readonly LinearModule[];
  lora: readonly LinearModule[];
  loraScaling: number;
  /** Also output the gradients of the frozen weights (norms, projections, biases, lm_head). */
  weightGrads: boolean;
}

type NormName = LayerNormName | 'norm';

/** Output name of the gradient of a graph input (a weight). */
export function gradName(input: string): string {
  return `${input}.grad`;
}

/** Output names of the LoRA gradients of module m. */
export function loraGradNames(m: LinearModule): { dA: string; dB: string } {
  return { dA: gradName(`${m}.lora_A`), dB: gradName(`${m}.lora_B`) };
}

/** [out, in] of every projection of a layer. */
export function projectionDims(config: ModelConfig): { outDim: Record<LinearModule, number>; inDim: Record<LinearModule, number> } {
  const { hiddenSize: H, numHeads: nH, numKvHeads: nKV, headDim: hd, intermediateSize: I } = config;
  return {
    outDim: { q_proj: nH * hd, k_proj: nKV * hd, v_proj: nKV * hd, o_proj: H, gate_proj: I, up_proj: I, down_proj: H },
    inDim: { q_proj: H, k_proj: H, v_proj: H, o_proj: nH * hd, gate_proj: H, up_proj: H, down_proj: I },
  };
}

export class GraphOps implements LayerOps<string>, LayerBackwardOps<string>, HeadOps<string, string> {
  private readonly epsConst: string;
  private readonly halfSplit: string;
  private readonly axis0: string;
  private readonly one: string;
  private readonly dims: ReturnType<typeof projectionDims>;
  /** What backward halves read of their forward halves, by the forward's input or output. */
  private readonly invRms = new Map<string, string>();
  private readonly loraDown = new Map<LinearModule, string>();
  private readonly heads = new Map<string, { Q: string; K: string; V: string; P: string; c: string }>();
  private readonly sigmoid = new Map<string, { sig: string; silu: string }>();

  constructor(
    private readonly g: OnnxGraph,
    private readonly config: ModelConfig,
    private readonly spec: GraphOpsSpec,
  ) {
    this.epsConst = g.constant('float32', [], [config.rmsNormEps]);
    this.halfSplit = this.shape([config.headDim / 2, config.headDim / 2]);
    this.axis0 = this.shape([0]);
    this.one = g.constant('float32', [], [1]);
    this.dims = projectionDims(config);
  }

  private shape(dims: number[]): string {
    return this.g.constant('int64', [dims.length], dims);
  }

  private mul(a: string, b: string): string {
    return this.g.op('Mul', [a, b]);
  }

  private add(a: string, b: string): string {
    return this.g.op('Add', [a, b]);
  }

  private sub(a: string, b: string): string {
    return this.g.op('Sub', [a, b]);
  }

  /** A weight gradient as a graph output (pretraining only). */
  private weightGrad(value: string, weight: string, shape: Array<number | string>): void {
    this.g.output(gradName(weight), 'float32', shape, value);
  }

  // ---- forward halves ----

  rmsNorm(x: string, w: NormName): string {
    const g = this.g;
    const meanSq = g.op('ReduceMean', [this.mul(x, x)], { axes: [-1], keepdims: 1 });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [this.add(meanSq, this.epsConst)])]);
    this.invRms.set(x, inv);
    return this.mul(this.mul(x, inv), w);
  }

  linear(x: string, m: LinearModule): string {
    const { g, spec } = this;
    const base = g.op('Gemm', spec.biases.includes(m) ? [x, m, `${m}.bias`] : [x, m], { transB: 1 });
    if (!spec.lora.includes(m)) return base;
    const down = g.op('Gemm', [x, `${m}.lora_A`], { transB: 1 });
    this.loraDown.set(m, down);
    const up = g.op('Gemm', [down, `${m}.lora_B`], { transB: 1, alpha: { float: spec.loraScaling } });
    return this.add(base, up);
  }

  // [T, heads·hd] → [heads, T, hd] and back.
  private toHeads(x: string, n: number): string {
    return this.g.op('Transpose', [this.g.op('Reshape', [x, this.shape([0, n, this.config.headDim])])], { perm: [1, 0, 2] });
  }

  private fromHeads(x: string, n: number): string {
    return this.g.op('Reshape', [this.g.op('Transpose', [x], { perm: [1, 0, 2] }), this.shape([0, n * this.config.headDim])]);
  }

  // Rotary embedding of head-major t: t·cos + rotate_half(t)·sin.
  private rope(t: string): string {
    const [t1, t2] = this.g.node('Split', [t, this.halfSplit], { axis: -1 }, 2);
    const rotated = this.g.op('Concat', [this.g.op('Neg', [t2]), t1], { axis: -1 });
    return this.add(this.mul(t, 'cos'), this.mul(rotated, 'sin'));
  }

  // Grouped-query attention: KV head j serves query heads j·g … j·g+g−1 (HF's repeat_kv).
  private repeatKv(x: string): string {
    const { numHeads: nH, numKvHeads: nKV, headDim: hd } = this.config;
    const group = nH / nKV;
    if (group === 1) return x;
    const expanded = this.g.op('Expand', [this.g.op('Unsqueeze', [x, this.shape([1])]), this.shape([nKV, group, 1, 1])]);
    return this.g.op('Reshape', [expanded, this.shape([nH, -1, hd])]);
  }

  attention(qIn: string, kIn: string, vIn: string): string {
    const g = this.g;
    const { numHeads: nH, numKvHeads: nKV, headDim: hd } = this.config;
    const Q = this.rope(this.toHeads(qIn, nH));
    const K = this.repeatKv(this.rope(this.toHeads(kIn, nKV)));
    const V = this.repeatKv(this.toHeads(vIn, nKV));
    const c = g.constant('float32', [], [1 / Math.sqrt(hd)]);
    const scores = this.add(this.mul(g.op('MatMul', [Q, g.op('Transpose', [K], { perm: [0, 2, 1] })]), c), 'mask');
    const P = g.op('Softmax', [scores], { axis: -1 });
    this.heads.set(qIn, { Q, K, V, P, c });
    return this.fromHeads(g.op('MatMul', [P, V]), nH);
  }

  swiglu(gate: string, up: string): string {
    const sig = this.g.op('Sigmoid', [gate]);
    const silu = this.mul(gate, sig);
    this.sigmoid.set(gate, { sig, silu });
    return this.mul(silu, up);
  }

  residual(x: string, y: string): string {
    return this.add(x, y);
  }

  // ---- backward halves ----

  rmsNormBackward(dn: string, x: string, w: NormName, around: string | null): string {
    const inv = this.invRms.get(x);
    if (!inv) throw new Error(`rmsNormBackward: no forward norm of ${x} in this graph`);
    if (this.spec.weightGrads) {
      const dw = this.g.op('ReduceSum', [this.mul(dn, this.mul(x, inv)), this.axis0], { keepdims: 0 });
      this.weightGrad(dw, w, [this.config.hiddenSize]);
    }
    const gw = this.mul(dn, w);
    const m = this.g.op('ReduceMean', [this.mul(gw, x)], { axes: [-1], keepdims: 1 });
    const dx = this.mul(inv, this.sub(gw, this.mul(this.mul(x, this.mul(inv, inv)), m)));
    return around === null ? dx : this.add(around, dx);
  }

  linearBackward(dz: string, x: string, m: LinearModule, sum?: string): string {
    const { g, spec } = this;
    const base = g.op('Gemm', [dz, m]);
    if (spec.weightGrads) {
      this.weightGrad(g.op('Gemm', [dz, x], { transA: 1 }), m, [this.dims.outDim[m], this.dims.inDim[m]]);
      if (spec.biases.includes(m)) this.weightGrad(g.op('ReduceSum', [dz, this.axis0], { keepdims: 0 }), `${m}.bias`, [this.dims.outDim[m]]);
    }
    let dx = base;
    if (spec.lora.includes(m)) {
      const s = spec.loraScaling;
      const { dA, dB } = loraGradNames(m);
      const dzB = g.op('Gemm', [dz, `${m}.lora_B`]);
      g.output(dA, 'float32', ['r', this.dims.inDim[m]], g.op('Gemm', [dzB, x], { transA: 1, alpha: { float: s } }));
      const down = this.loraDown.get(m);
      if (!down) throw new Error(`linearBackward: no forward LoRA branch of ${m} in this graph`);
      g.output(dB, 'float32', [this.dims.outDim[m], 'r'], g.op('Gemm', [dz, down], { transA: 1, alpha: { float: s } }));
      dx = this.add(base, g.op('Gemm', [dzB, `${m}.lora_A`], { alpha: { float: s } }));
    }
    return sum === undefined ? dx : this.add(sum, dx);
  }

  // The adjoint of rope on head-major gradients.
  private ropeBackward(d: string): string {
    const [a1, a2] = this.g.node('Split', [this.mul(d, 'sin'), this.halfSplit], { axis: -1 }, 2);
    return this.add(this.mul(d, 'cos'), this.g.op('Concat', [a2, this.g.op('Neg', [a1])], { axis: -1 }));
  }

  // The adjoint of repeatKv: each shared KV head's gradient is the sum over its group.
  private unrepeatKv(d: string): string {
    const { numHeads: nH, numKvHeads: nKV, headDim: hd } = this.config;
    const group = nH / nKV;
    if (group === 1) return d;
    return this.g.op('ReduceSum', [this.g.op('Reshape', [d, this.shape([nKV, group, -1, hd])]), this.shape([1])], { keepdims: 0 });
  }

  /** (k and v need not be passed: their heads are found by q's.) */
  attentionBackward(dOut: string, q: string): { dq: string; dk: string; dv: string } {
    const g = this.g;
    const { numHeads: nH, numKvHeads: nKV } = this.config;
    const f = this.heads.get(q);
    if (!f) throw new Error(`attentionBackward: no forward attention of ${q} in this graph`);
    const { Q, K, V, P, c } = f;
    const dC = this.toHeads(dOut, nH);
    const dP = g.op('MatMul', [dC, g.op('Transpose', [V], { perm: [0, 2, 1] })]);
    const dV = g.op('MatMul', [g.op('Transpose', [P], { perm: [0, 2, 1] }), dC]);
    const rowDot = g.op('ReduceSum', [this.mul(dP, P), this.shape([-1])], { keepdims: 1 });
    const dS = this.mul(this.mul(P, this.sub(dP, rowDot)), c);
    const dQ = g.op('MatMul', [dS, K]);
    const dK = g.op('MatMul', [g.op('Transpose', [dS], { perm: [0, 2, 1] }), Q]);
    return {
      dq: this.fromHeads(this.ropeBackward(dQ), nH),
      dk: this.fromHeads(this.ropeBackward(this.unrepeatKv(dK)), nKV),
      dv: this.fromHeads(this.unrepeatKv(dV), nKV),
    };
  }

  swigluBackward(da: string, gate: string, up: string): { dgate: string; dup: string } {
    const f = this.sigmoid.get(gate);
    if (!f) throw new Error(`swigluBackward: no forward SwiGLU of ${gate} in this graph`);
    const { sig, silu } = f;
    const dup = this.mul(da, silu);
    const dsilu = this.mul(sig, this.add(this.one, this.mul(gate, this.sub(this.one, sig))));
    return { dgate: this.mul(this.mul(da, up), dsilu), dup };
  }

  /**
   * The head's cross-entropy over the graph inputs `lm_head`, `targets` (int64, any value where
   * the weight is 0) and `weights` (c_t): outputs `nll` [T] and, returned as the loss, Σ c_t·nll_t.
   */
  crossEntropyBackward(normed: string): { loss: string; dNormed: string } {
    const g = this.g;
    const axis1 = this.shape([1]);
    const logits = g.op('Gemm', [normed, 'lm_head'], { transB: 1 });
    const logProbs = g.op('LogSoftmax', [logits], { axis: -1 });
    const targets = g.op('Unsqueeze', ['targets', axis1]);
    const nll = 'nll';
    g.output(nll, 'float32', ['T'], g.op('Neg', [g.op('Squeeze', [g.op('GatherElements', [logProbs, targets], { axis: 1 }), axis1])]));
    const loss = g.op('ReduceSum', [this.mul(nll, 'weights')], { keepdims: 0 });
    // dz = c ⊙ (softmax − onehot): exp(logProbs) is the softmax; c ⊙ onehot is c scattered into zeros.
    const w = g.op('Unsqueeze', ['weights', axis1]);
    const oneHot = g.op('ScatterElements', [g.op('ConstantOfShape', [g.op('Shape', [logits])]), targets, w], { axis: 1 });
    const dz = this.sub(this.mul(g.op('Exp', [logProbs]), w), oneHot);
    if (this.spec.weightGrads) this.weightGrad(g.op('Gemm', [dz, normed], { transA: 1 }), 'lm_head', ['V', this.config.hiddenSize]);
    return { loss, dNormed: g.op('Gemm', [dz, 'lm_head']) };
  }

}
