// The one definition of a Llama-family decoder layer, written against the operations a
// backend provides: the CPU compiles it into an ONNX graph (decoder-graph.ts), a device with
// neural-network kernels runs it eagerly (device-model.ts).
//   h = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))),  n1 = rms(x)·w1
//   y = h + down_proj(silu(gate_proj(n2)) · up_proj(n2)),                    n2 = rms(h)·w2
// A projection with a LoRA branch adds s·(input·Aᵀ)·Bᵀ inside `linear`.
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

export function decoderLayer<X>(ops: LayerOps<X>, x: X): X {
  const n1 = ops.rmsNorm(x, 'input_layernorm');
  const attn = ops.attention(ops.linear(n1, 'q_proj'), ops.linear(n1, 'k_proj'), ops.linear(n1, 'v_proj'));
  const h = ops.residual(x, ops.linear(attn, 'o_proj'));
  const n2 = ops.rmsNorm(h, 'post_attention_layernorm');
  const act = ops.swiglu(ops.linear(n2, 'gate_proj'), ops.linear(n2, 'up_proj'));
  return ops.residual(h, ops.linear(act, 'down_proj'));
}
