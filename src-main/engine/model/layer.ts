// The one definition of a Llama-family decoder layer and of its backward, written against the
// operations a backend provides: the CPU compiles them into ONNX graphs (graph-ops.ts), a
// device with neural-network kernels runs them eagerly (device-model.ts).
//   h = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))),  n1 = rms(x)·w1
//   y = h + down_proj(silu(gate_proj(n2)) · up_proj(n2)),                    n2 = rms(h)·w2
// A projection with a LoRA branch adds s·(input·Aᵀ)·Bᵀ inside `linear`. The backward walks the
// same steps in reverse over the values a forward pass recorded (the layer is recomputed from
// its input x: nothing else is kept between the forward and the backward pass). A residual
// sends ∂L/∂(its output) to both of its inputs unchanged, which is why the norms' backwards
// take the gradient that goes around them and the products of one input sum into one gradient.
import type { LinearModule } from '../io/targets';

export type LayerNormName = 'input_layernorm' | 'post_attention_layernorm';

export interface LayerOps<X> {
  rmsNorm(x: X, weight: LayerNormName): X;
  linear(x: X, module: LinearModule): X;
  /** Causal attention of rotary-embedded q and k over v, heads merged back. */
  attention(q: X, k: X, v: X): X;
  swiglu(gate: X, up: X): X;
  /** x + y; the backend may reuse x's storage (x is not used again). */
  residual(x: X, y: X): X;
}

/** What the backward reads of one forward pass: the layer's input and each step's output. */
export interface LayerValues<X> {
  x: X;
  n1: X;
  q: X;
  k: X;
  v: X;
  attn: X;
  /** x + o_proj(attn). */
  h: X;
  n2: X;
  gate: X;
  up: X;
  act: X;
}

/**
 * The backward halves of the layer's operations: each gives ∂L/∂(its inputs) from ∂L/∂(its
 * output) and the forward's values. Parameter gradients (LoRA factors; with pretraining every
 * weight) are the backend's to keep, as a side effect of rmsNormBackward and linearBackward.
 */
export interface LayerBackwardOps<X> {
  /** ∂L/∂x of rmsNorm(x, weight) given ∂L/∂output, plus `around`: what reaches x past the norm. */
  rmsNormBackward(dOut: X, x: X, weight: LayerNormName, around: X | null): X;
  /** ∂L/∂x of linear(x, module) given ∂L/∂output, plus `sum` (another product's ∂L/∂x of the same x) when given. */
  linearBackward(dOut: X, x: X, module: LinearModule, sum?: X): X;
  attentionBackward(dOut: X, q: X, k: X, v: X): { dq: X; dk: X; dv: X };
  swigluBackward(dOut: X, gate: X, up: X): { dgate: X; dup: X };
}

/** The layer's output; with `record`, the values its backward needs are written there. */
export function decoderLayer<X>(ops: LayerOps<X>, x: X, record?: Partial<LayerValues<X>>): X {
  const n1 = ops.rmsNorm(x, 'input_layernorm');
  const q = ops.linear(n1, 'q_proj');
  const k = ops.linear(n1, 'k_proj');
  const v = ops.linear(n1, 'v_proj');
  const attn = ops.attention(q, k, v);
  const h = ops.residual(x, ops.linear(attn, 'o_proj'));
  const n2 = ops.rmsNorm(h, 'post_attention_layernorm');
  const gate = ops.linear(n2, 'gate_proj');
  const up = ops.linear(n2, 'up_proj');
  const act = ops.swiglu(gate, up);
  if (record) Object.assign(record, { x, n1, q, k, v, attn, h, n2, gate, up, act });
  return ops.residual(h, ops.linear(act, 'down_proj'));
}

/** ∂L/∂x of the layer given ∂L/∂y and a forward pass's values. */
export function decoderLayerBackward<X>(ops: LayerBackwardOps<X>, f: LayerValues<X>, dy: X): X {
  // y = h + down(act): dy reaches h directly and through the MLP.
  const dAct = ops.linearBackward(dy, f.act, 'down_proj');
  const { dgate, dup } = ops.swigluBackward(dAct, f.gate, f.up);
  const dn2 = ops.linearBackward(dup, f.n2, 'up_proj', ops.linearBackward(dgate, f.n2, 'gate_proj'));
  const dh = ops.rmsNormBackward(dn2, f.h, 'post_attention_layernorm', dy);
  // h = x + o(attn(q, k, v)): dh reaches x directly and through attention.
  const dAttn = ops.linearBackward(dh, f.attn, 'o_proj');
  const { dq, dk, dv } = ops.attentionBackward(dAttn, f.q, f.k, f.v);
  const dn1 = ops.linearBackward(dv, f.n1, 'v_proj', ops.linearBackward(dk, f.n1, 'k_proj', ops.linearBackward(dq, f.n1, 'q_proj')));
  return ops.rmsNormBackward(dn1, f.x, 'input_layernorm', dh);
}
