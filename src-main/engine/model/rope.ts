// Rotary position embedding tables (HF's rotate_half convention: the two halves of each
// head are rotated together, cos/sin = cat(freqs, freqs)), computed in float64 and rounded
// once to float32. Supports the default and the 'linear' and 'llama3' scalings.
import { UserError } from '../errors';
import type { ModelConfig } from '../io/hf-config';

/** Inverse frequencies θ^(−2i/d), i < d/2, with the config's rope scaling applied. */
export function inverseFrequencies(config: ModelConfig): Float64Array {
  const d = config.headDim;
  const inv = Float64Array.from({ length: d / 2 }, (_, i) => 1 / config.ropeTheta ** ((2 * i) / d));
  const s = config.ropeScaling;
  const type = s ? String(s.rope_type ?? s.type ?? 'default') : 'default';
  if (type === 'default') return inv;
  if (type === 'linear') {
    const factor = Number(s!.factor);
    return inv.map((f) => f / factor);
  }
  if (type === 'llama3') {
    // Llama 3.1: long wavelengths slowed by `factor`, short kept, a smooth blend between.
    const factor = Number(s!.factor);
    const low = Number(s!.low_freq_factor);
    const high = Number(s!.high_freq_factor);
    const original = Number(s!.original_max_position_embeddings);
    const lowWavelen = original / low;
    const highWavelen = original / high;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (original / wavelen - low) / (high - low);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  throw new UserError(`rope scaling '${type}' is not supported (supported: default, linear, llama3)`);
}

/** cos and sin tables [length, headDim] for positions offset..offset+length−1. */
export function ropeTables(config: ModelConfig, length: number, offset = 0): { cos: Float32Array; sin: Float32Array } {
  const d = config.headDim;
  const half = d / 2;
  const inv = inverseFrequencies(config);
  const cos = new Float32Array(length * d);
  const sin = new Float32Array(length * d);
  for (let t = 0; t < length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = (t + offset) * inv[i];
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[t * d + i] = c;
      cos[t * d + half + i] = c;
      sin[t * d + i] = s;
      sin[t * d + half + i] = s;
    }
  }
  return { cos, sin };
}

/** Additive causal mask [length, length] (0 or −∞), banded when a sliding window is set. */
export function causalMask(length: number, slidingWindow: number | null): Float32Array {
  const mask = new Float32Array(length * length).fill(-Infinity);
  for (let i = 0; i < length; i++) {
    const from = slidingWindow ? Math.max(0, i - slidingWindow + 1) : 0;
    for (let j = from; j <= i; j++) mask[i * length + j] = 0;
  }
  return mask;
}

/** The config's attention window (keys at most window − 1 positions back), or null for none. */
export function slidingWindowOf(config: ModelConfig): number | null {
  const window = config.raw.sliding_window;
  return typeof window === 'number' && window > 0 ? window : null;
}

/** The per-length inputs of the decoder graphs: cos, sin [T, headDim] and the mask [T, T]. */
export function positionInputs(config: ModelConfig, length: number): { cos: Float32Array; sin: Float32Array; mask: Float32Array } {
  return { ...ropeTables(config, length), mask: causalMask(length, slidingWindowOf(config)) };
}
