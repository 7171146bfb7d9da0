// AdamW (Loshchilov & Hutter) over named float32 parameters, with torch.optim.AdamW's update:
//
//   p ← p·(1 − lr·wd)                       (decoupled weight decay; skipped for noDecay names)
//   m ← β1·m + (1 − β1)·g
//   v ← β2·v + (1 − β2)·g²
//   p ← p − lr/(1 − β1^t) · m / (√v/√(1 − β2^t) + ε)
//
// Each element is computed in float64 from the stored float32 values and rounded once on
// store, so the whole state is the float32 moments plus the step count: a restored optimizer
// continues bit for bit like one that never stopped.

import type { AdamWConstants } from '../tensor/nn';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Parameter-name patterns (`*` matches any run of characters) exempt from weight decay. */
  noDecay?: readonly string[];
}

export interface AdamWState {
  /** Updates applied so far (t of the bias corrections). */
  step: number;
  expAvg: Map<string, Float32Array>;
  expAvgSq: Map<string, Float32Array>;
}

/** The constants of update t at learning rate lr, shared by the host's loop below and a device's (NeuralOps' parameter blocks). */
export function adamwStepConstants(o: AdamWOptions, t: number, lr: number): AdamWConstants {
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`AdamW: invalid learning rate ${lr}`);
  return {
    beta1: o.beta1,
    oneMinusBeta1: 1 - o.beta1,
    beta2: o.beta2,
    oneMinusBeta2: 1 - o.beta2,
    eps: o.eps,
    stepSize: lr / (1 - Math.pow(o.beta1, t)),
    bc2Sqrt: Math.sqrt(1 - Math.pow(o.beta2, t)),
    shrink: 1 - lr * o.weightDecay,
  };
}

/** Checks betas, eps and weight decay. */
export function checkAdamWOptions(o: AdamWOptions): void {
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1)) throw new Error(`AdamW: betas must be in [0, 1) (got ${o.beta1}, ${o.beta2})`);
  if (!(o.eps > 0) || !(o.weightDecay >= 0)) throw new Error(`AdamW: eps must be > 0 and weight decay ≥ 0 (got ${o.eps}, ${o.weightDecay})`);
}

/** Whether each name decays (not matched by a noDecay pattern). */
export function decayFlags(names: readonly string[], noDecay: readonly string[] = []): Map<string, boolean> {
  const patterns = noDecay.map(globToRegExp);
  return new Map(names.map((n) => [n, !patterns.some((re) => re.test(n))]));
}

export class AdamW {
  readonly names: readonly string[];
  private readonly sizes: Map<string, number>;
  private readonly decay: Map<string, boolean>;
  private m: Map<string, Float32Array>;
  private v: Map<string, Float32Array>;
  private t = 0;

  /** `params` fixes the parameter names (in its order) and sizes; values are not kept. */
  constructor(
    params: ReadonlyMap<string, Float32Array>,
    readonly options: AdamWOptions,
  ) {
    checkAdamWOptions(options);
    this.names = [...params.keys()];
    this.sizes = new Map([...params].map(([k, p]) => [k, p.length]));
    this.decay = decayFlags(this.names, options.noDecay);
    this.m = new Map(this.names.map((n) => [n, new Float32Array(this.sizes.get(n)!)]));
    this.v = new Map(this.names.map((n) => [n, new Float32Array(this.sizes.get(n)!)]));
  }

  get stepCount(): number {
    return this.t;
  }

  /** Whether weight decay applies to the parameter. */
  decays(name: string): boolean {
    return this.decay.get(name) ?? false;
  }

  /** One update of every parameter in place with learning rate `lr`. */
  step(params: ReadonlyMap<string, Float32Array>, grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    const c = adamwStepConstants(this.options, this.t + 1, lr);
    for (const n of this.names) {
      const p = params.get(n);
      const g = grads.get(n);
      const size = this.sizes.get(n)!;
      if (!p || p.length !== size) throw new Error(`AdamW: parameter "${n}" is missing or has ${p?.length} elements, expected ${size}`);
      if (!g || g.length !== size) throw new Error(`AdamW: gradient of "${n}" is missing or has ${g?.length} elements, expected ${size}`);
    }
    this.t++;
    const { beta1: b1, oneMinusBeta1: omb1, beta2: b2, oneMinusBeta2: omb2, eps, stepSize, bc2Sqrt } = c;
    for (const n of this.names) {
      const p = params.get(n)!;
      const g = grads.get(n)!;
      const m = this.m.get(n)!;
      const v = this.v.get(n)!;
      const shrink = this.decay.get(n) ? c.shrink : 1;
      // native/src/optimizer.cu repeats these operations in this order (the GPU's step equals this one).
      for (let i = 0; i < p.length; i++) {
        const gi = g[i];
        m[i] = b1 * m[i] + omb1 * gi;
        v[i] = b2 * v[i] + omb2 * gi * gi;
        p[i] = p[i] * shrink - (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
      }
    }
  }

  /** A copy of the state. */
  state(): AdamWState {
    return { step: this.t, expAvg: copyMap(this.m), expAvgSq: copyMap(this.v) };
  }

  /** Replaces the state with a copy of `s` (names and sizes must match). */
  restore(s: AdamWState): void {
    if (!Number.isSafeInteger(s.step) || s.step < 0) throw new Error(`AdamW: invalid step count ${s.step}`);
    for (const [what, map] of [['exp_avg', s.expAvg], ['exp_avg_sq', s.expAvgSq]] as const) {
      if (map.size !== this.names.length) throw new Error(`AdamW: the state's ${what} has ${map.size} tensors, expected ${this.names.length}`);
      for (const n of this.names) {
        const a = map.get(n);
        if (!a || a.length !== this.sizes.get(n)) {
          throw new Error(`AdamW: the state's ${what} of "${n}" is missing or has ${a?.length} elements, expected ${this.sizes.get(n)}`);
        }
      }
    }
    this.t = s.step;
    this.m = copyMap(s.expAvg, this.names);
    this.v = copyMap(s.expAvgSq, this.names);
  }
}

function copyMap(map: ReadonlyMap<string, Float32Array>, order: readonly string[] = [...map.keys()]): Map<string, Float32Array> {
  return new Map(order.map((k) => [k, map.get(k)!.slice()]));
}

/** A whole-name pattern: `*` matches any run of characters, everything else literally. */
export function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}
