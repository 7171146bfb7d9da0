// Gradients of the next-token loss with respect to the LoRA adapters, the backbone frozen
// (never differentiated: the layer backward graphs compute no weight gradient). See
// backprop.ts for how the passes run and what is kept between them.
import { UserError } from '../errors';
import type { LinearModule } from '../io/targets';
import type { WeightSet } from '../model/weights';
import { backprop, type GradientOptions } from './backprop';
import { loraGradNames } from '../model/decoder-graph';

export { graphSpec, type GradientOptions } from './backprop';

export interface LoraModuleGrad {
  /** ∂L/∂A, [r, in] row-major. */
  dA: Float32Array;
  /** ∂L/∂B, [out, r] row-major (the LoRA scaling s is included). */
  dB: Float32Array;
}

export interface LoraGradientResult {
  /** Σ_t mask_t·nll_t / denominator. */
  loss: number;
  /** −log p(targets[t] | ids[0..t]) at every position (masked ones included, target 0 there). */
  nll: Float32Array;
  /** The denominator used (Σ mask unless given in the options). */
  denominator: number;
  /** Per decoder layer, per module of weights.lora.modules. */
  grads: Array<Map<LinearModule, LoraModuleGrad>>;
}

/**
 * Loss and LoRA gradients for one sequence. `targets[t]` is the token to predict after
 * ids[0..t]; `lossMask[t]` ≥ 0 weighs position t (0 leaves it out; its target is then ignored).
 */
export async function loraGradients(
  weights: WeightSet,
  ids: Int32Array,
  targets: Int32Array,
  lossMask: Float32Array,
  options: GradientOptions = {},
): Promise<LoraGradientResult> {
  if (!weights.lora || weights.lora.modules.length === 0) throw new UserError('no LoRA adapter is attached: there is nothing to differentiate');
  const modules = weights.lora.modules;
  const r = await backprop(weights, ids, targets, lossMask, options, { weightGrads: false });
  const grads = r.layers.map((layer) => {
    const out = new Map<LinearModule, LoraModuleGrad>();
    for (const m of modules) {
      const n = loraGradNames(m);
      out.set(m, { dA: layer.get(n.dA)!, dB: layer.get(n.dB)! });
    }
    return out;
  });
  return { loss: r.loss, nll: r.nll, denominator: r.denominator, grads };
}
