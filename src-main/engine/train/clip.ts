// Global gradient-norm clipping (as torch.nn.utils.clip_grad_norm_): the L2 norm of all
// gradients together, summed in float64 in the given order (deterministic); when it exceeds
// maxNorm every gradient is scaled by maxNorm / (norm + 1e-6).

/** The float64 L2 norm of all the arrays together. */
export function globalNorm(grads: Iterable<Float32Array>): number {
  let s = 0;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  }
  return Math.sqrt(s);
}

export interface ClipResult {
  /** The norm before clipping (NaN or Infinity when a gradient is not finite). */
  norm: number;
  /** The factor applied (1 when not clipped). */
  scale: number;
}

/** The factor clipping applies to gradients of this global norm: maxNorm / (norm + 1e-6) above maxNorm, else 1 (0 or ∞: never clips). */
export function clipScale(norm: number, maxNorm: number): number {
  if (!(maxNorm >= 0)) throw new Error(`clipGradNorm: maxNorm must be ≥ 0 (got ${maxNorm})`);
  if (!Number.isFinite(norm) || maxNorm === 0 || maxNorm === Infinity || norm <= maxNorm) return 1;
  return maxNorm / (norm + 1e-6);
}

/**
 * Scales the gradients in place so their global norm is at most maxNorm (0 or Infinity: no
 * clipping). A non-finite norm is returned untouched, for the caller to stop on.
 */
export function clipGradNorm(grads: Iterable<Float32Array>, maxNorm: number): ClipResult {
  const list = [...grads];
  const norm = globalNorm(list);
  const scale = clipScale(norm, maxNorm);
  if (scale === 1) return { norm, scale };
  for (const g of list) {
    for (let i = 0; i < g.length; i++) g[i] *= scale;
  }
  return { norm, scale };
}
