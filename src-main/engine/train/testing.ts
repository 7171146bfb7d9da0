// A real, differentiable toy problem behind the GradientSource interface, for the training
// loop's tests: LoRA on linear regression. Each module m has a frozen W0 (out × in) and a
// target W* = W0 + (rank-r perturbation), so a rank-r adapter can fit it exactly. Token ids
// are sample ids: a row's target tokens row[1..seqLen] pick the samples (x, y = W*·x + noise)
// of the batch. The loss is the mean over modules and samples of ‖(W0 + s·B·A)·x − y‖²/out,
// with analytic gradients, computed in float64 in a fixed order (deterministic).
import type { AdapterMatrix } from '../adapter/peft';
import { adapterKey } from '../adapter/peft';
import { matrix } from '../tensor/matrix';
import { Rng } from '../util/random';
import type { GradientContext, GradientResult, GradientSource } from './trainer';

export interface ToyOptions {
  seed: number;
  samples: number;
  inFeatures: number;
  outFeatures: number;
  rank: number;
  alpha: number;
  modules: string[];
}

interface ToyModule {
  name: string;
  w0: Float64Array;
  x: Float64Array; // samples × in
  y: Float64Array; // samples × out
}

type Params = ReadonlyMap<string, ArrayLike<number>>;

export class ToyLoraProblem implements GradientSource {
  readonly scaling: number;
  private readonly mods: ToyModule[];
  calls = 0;

  constructor(readonly o: ToyOptions) {
    this.scaling = o.alpha / o.rank;
    const rng = new Rng(o.seed);
    const { inFeatures: n, outFeatures: m, rank: r, samples: k } = o;
    this.mods = o.modules.map((name) => {
      const w0 = rng.fillNormal(new Float64Array(m * n), 1 / Math.sqrt(n)) as Float64Array;
      const u = rng.fillNormal(new Float64Array(m * r), 1) as Float64Array;
      const v = rng.fillNormal(new Float64Array(r * n), 1 / Math.sqrt(n)) as Float64Array;
      const wStar = w0.slice();
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let q = 0; q < r; q++) wStar[i * n + j] += 0.5 * u[i * r + q] * v[q * n + j];
      const x = rng.fillNormal(new Float64Array(k * n), 1) as Float64Array;
      const y = new Float64Array(k * m);
      for (let s = 0; s < k; s++) {
        for (let i = 0; i < m; i++) {
          let acc = 0;
          for (let j = 0; j < n; j++) acc += wStar[i * n + j] * x[s * n + j];
          y[s * m + i] = acc + 0.01 * rng.normal();
        }
      }
      return { name, w0, x, y };
    });
  }

  /** QLoRA-style start: A small Gaussian, B = 0. */
  initialAdapter(seed = this.o.seed + 1): AdapterMatrix[] {
    const rng = new Rng(seed);
    const { inFeatures: n, outFeatures: m, rank: r } = this.o;
    return this.mods.map((mod) => ({
      name: mod.name,
      loraA: matrix(r, n, rng.fillNormal(new Float32Array(r * n), 1 / Math.sqrt(n)) as Float32Array),
      loraB: matrix(m, r),
    }));
  }

  /** A token stream of `length` sample ids. */
  tokens(length: number, seed: number): Int32Array {
    const rng = new Rng(seed);
    const out = new Int32Array(length);
    for (let i = 0; i < length; i++) out[i] = Math.floor(rng.uniform() * this.o.samples);
    return out;
  }

  private samplesOf(batch: Int32Array[]): number[] {
    const ids: number[] = [];
    for (const row of batch) for (let t = 1; t < row.length; t++) ids.push(row[t]);
    return ids;
  }

  /** Loss and (optionally) gradients in float64. */
  evaluate(batch: Int32Array[], params: Params, withGrads: boolean): { loss: number; grads: Map<string, Float64Array> } {
    const { inFeatures: n, outFeatures: m, rank: r } = this.o;
    const s = this.scaling;
    const ids = this.samplesOf(batch);
    const grads = new Map<string, Float64Array>();
    let loss = 0;
    const norm = 1 / (ids.length * m * this.mods.length);
    for (const mod of this.mods) {
      const a = params.get(adapterKey(mod.name, 'lora_A'))!;
      const b = params.get(adapterKey(mod.name, 'lora_B'))!;
      // W = W0 + s·B·A
      const w = mod.w0.slice();
      for (let i = 0; i < m; i++) for (let q = 0; q < r; q++) {
        const bq = s * b[i * r + q];
        for (let j = 0; j < n; j++) w[i * n + j] += bq * a[q * n + j];
      }
      const g = new Float64Array(m * n); // dL/dW
      for (const id of ids) {
        for (let i = 0; i < m; i++) {
          let e = -mod.y[id * m + i];
          for (let j = 0; j < n; j++) e += w[i * n + j] * mod.x[id * n + j];
          loss += e * e * norm;
          if (withGrads) for (let j = 0; j < n; j++) g[i * n + j] += 2 * norm * e * mod.x[id * n + j];
        }
      }
      if (!withGrads) continue;
      const ga = new Float64Array(r * n); // s·Bᵀ·G
      const gb = new Float64Array(m * r); // s·G·Aᵀ
      for (let i = 0; i < m; i++) for (let q = 0; q < r; q++) {
        let acc = 0;
        for (let j = 0; j < n; j++) {
          acc += g[i * n + j] * a[q * n + j];
          ga[q * n + j] += s * b[i * r + q] * g[i * n + j];
        }
        gb[i * r + q] = s * acc;
      }
      grads.set(adapterKey(mod.name, 'lora_A'), ga);
      grads.set(adapterKey(mod.name, 'lora_B'), gb);
    }
    return { loss, grads };
  }

  async compute(batch: Int32Array[], params: ReadonlyMap<string, Float32Array>, _ctx: GradientContext): Promise<GradientResult> {
    this.calls++;
    const { loss, grads } = this.evaluate(batch, params, true);
    return { loss, grads: new Map([...grads].map(([k, v]) => [k, Float32Array.from(v)])) };
  }

  async loss(batch: Int32Array[], params: ReadonlyMap<string, Float32Array>): Promise<number> {
    return this.evaluate(batch, params, false).loss;
  }
}
