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
    const { beta1, beta2, eps, weightDecay } = options;
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new Error(`AdamW: betas must be in [0, 1) (got ${beta1}, ${beta2})`);
    if (!(eps > 0) || !(weightDecay >= 0)) throw new Error(`AdamW: eps must be > 0 and weight decay ≥ 0 (got ${eps}, ${weightDecay})`);
    this.names = [...params.keys()];
    this.sizes = new Map([...params].map(([k, p]) => [k, p.length]));
    const patterns = (options.noDecay ?? []).map(globToRegExp);
    this.decay = new Map(this.names.map((n) => [n, !patterns.some((re) => re.test(n))]));
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
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`AdamW: invalid learning rate ${lr}`);
    for (const n of this.names) {
      const p = params.get(n);
      const g = grads.get(n);
      const size = this.sizes.get(n)!;
      if (!p || p.length !== size) throw new Error(`AdamW: parameter "${n}" is missing or has ${p?.length} elements, expected ${size}`);
      if (!g || g.length !== size) throw new Error(`AdamW: gradient of "${n}" is missing or has ${g?.length} elements, expected ${size}`);
    }
    const { beta1: b1, beta2: b2, eps, weightDecay } = this.options;
    const t = ++this.t;
    const stepSize = lr / (1 - Math.pow(b1, t));
    const bc2Sqrt = Math.sqrt(1 - Math.pow(b2, t));
    for (const n of this.names) {
      const p = params.get(n)!;
      const g = grads.get(n)!;
      const m = this.m.get(n)!;
      const v = this.v.get(n)!;
      const shrink = this.decay.get(n) ? 1 - lr * weightDecay : 1;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
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
