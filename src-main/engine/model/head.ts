// The one definition of the model head's backward, for every backend: the final RMSNorm of the
// last hidden states x, lm_head's logits and the weighted cross-entropy against the targets,
// and ∂L/∂x back through them. The CPU compiles it into one ONNX graph (head-graph.ts), a
// device runs it eagerly (device-model.ts), the vocabulary in blocks of rows.
//   n = rms(x)·w,  z = n·lm_headᵀ,  L = Σ_t c_t·(logsumexp(z_t) − z_t[target_t])
//   ∂L/∂z_t = c_t·(softmax(z_t) − onehot(target_t)),  ∂L/∂n = ∂L/∂z·lm_head

export interface HeadOps<X, Loss> {
  /** The final norm (the model's `norm` weight). */
  rmsNorm(x: X, weight: 'norm'): X;
  /** The weighted cross-entropy of n·lm_headᵀ against the targets (the backend's Loss), and ∂L/∂n. */
  crossEntropyBackward(normed: X): { loss: Loss; dNormed: X };
  /** ∂L/∂x of the final norm given ∂L/∂n (nothing goes around it: `around` is null). */
  rmsNormBackward(dOut: X, x: X, weight: 'norm', around: null): X;
}

/** The head's loss and ∂L/∂x for the last hidden states x. */
export function headBackward<X, Loss>(ops: HeadOps<X, Loss>, x: X): { loss: Loss; dx: X } {
  const normed = ops.rmsNorm(x, 'norm');
  const { loss, dNormed } = ops.crossEntropyBackward(normed);
  return { loss, dx: ops.rmsNormBackward(dNormed, x, 'norm', null) };
}
