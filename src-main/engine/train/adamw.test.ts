import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { AdamW, globToRegExp } from './adamw';

// Float64 reference of torch.optim.AdamW, written plainly from its documentation.
function referenceAdamW(
  p0: Float64Array,
  gradients: Float64Array[],
  lrs: number[],
  o: { b1: number; b2: number; eps: number; wd: number },
): Float64Array {
  const p = p0.slice();
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  gradients.forEach((g, k) => {
    const t = k + 1;
    const lr = lrs[k];
    for (let i = 0; i < p.length; i++) {
      p[i] -= lr * o.wd * p[i];
      m[i] = o.b1 * m[i] + (1 - o.b1) * g[i];
      v[i] = o.b2 * v[i] + (1 - o.b2) * g[i] * g[i];
      const mHat = m[i] / (1 - o.b1 ** t);
      const vHat = v[i] / (1 - o.b2 ** t);
      p[i] -= (lr * mHat) / (Math.sqrt(vHat) + o.eps);
    }
  });
  return p;
}

const OPTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

describe('AdamW', () => {
  it('matches a float64 reference over 20 steps with a changing lr and weight decay', () => {
    const rng = new Rng(Date.now());
    const n = 257;
    const p0 = rng.fillNormal(new Float32Array(n)) as Float32Array;
    const grads = Array.from({ length: 20 }, () => rng.fillNormal(new Float32Array(n), 0.1) as Float32Array);
    const lrs = grads.map((_, k) => 1e-3 * (1 + Math.cos(k)));
    const params = new Map([['w', p0.slice()]]);
    const opt = new AdamW(params, OPTS);
    grads.forEach((g, k) => opt.step(params, new Map([['w', g]]), lrs[k]));
    const ref = referenceAdamW(Float64Array.from(p0), grads.map((g) => Float64Array.from(g)), lrs, { b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.1 });
    // float32 storage: each of the 20 steps rounds p (half an ulp, 2^-24·|p|) and perturbs the
    // step (~2e-3) by the rounding of m and v (relative 2^-24, negligible). Bound: twice the
    // sum of the p roundings, 20·2^-23·max(1, |p|) (measured worst over 200 seeds: 0.22 of it).
    for (let i = 0; i < n; i++) {
      expect(Math.abs(params.get('w')![i] - ref[i])).toBeLessThanOrEqual(20 * 2 ** -23 * Math.max(1, Math.abs(ref[i])));
    }
    expect(opt.stepCount).toBe(20);
  });

  it('moves each element by about lr·sign(g) on the first step (bias correction)', () => {
    const params = new Map([['w', new Float32Array([1, -2, 3, 0])]]);
    const opt = new AdamW(params, { ...OPTS, weightDecay: 0 });
    opt.step(params, new Map([['w', new Float32Array([0.5, -3, 1e-3, 0])]]), 0.01);
    const w = params.get('w')!;
    expect(w[0]).toBeCloseTo(0.99, 6);
    expect(w[1]).toBeCloseTo(-1.99, 6);
    expect(w[2]).toBeCloseTo(2.99, 5);
    expect(w[3]).toBe(0);
  });

  it('decays only the parameters not matched by noDecay', () => {
    const params = new Map([
      ['base_model.model.x.lora_A.weight', new Float32Array([2, 2])],
      ['base_model.model.x.lora_B.weight', new Float32Array([2, 2])],
    ]);
    const opt = new AdamW(params, { ...OPTS, weightDecay: 0.5, noDecay: ['*lora_B*'] });
    expect(opt.decays('base_model.model.x.lora_A.weight')).toBe(true);
    expect(opt.decays('base_model.model.x.lora_B.weight')).toBe(false);
    const zero = new Map([...params.keys()].map((k) => [k, new Float32Array(2)]));
    opt.step(params, zero, 0.1);
    expect([...params.get('base_model.model.x.lora_A.weight')!]).toEqual([Math.fround(2 * 0.95), Math.fround(2 * 0.95)]);
    expect([...params.get('base_model.model.x.lora_B.weight')!]).toEqual([2, 2]);
  });

  it('continues bit for bit after its state is saved and restored', () => {
    const rng = new Rng(7);
    const shapes = { a: 33, b: 5 };
    const init = () => new Map(Object.entries(shapes).map(([k, n]) => [k, new Rng(n).fillNormal(new Float32Array(n)) as Float32Array]));
    const grads = Array.from({ length: 10 }, () => new Map(Object.entries(shapes).map(([k, n]) => [k, rng.fillNormal(new Float32Array(n)) as Float32Array])));
    const p1 = init();
    const o1 = new AdamW(p1, OPTS);
    for (const g of grads) o1.step(p1, g, 1e-2);

    const p2 = init();
    const o2 = new AdamW(p2, OPTS);
    for (const g of grads.slice(0, 4)) o2.step(p2, g, 1e-2);
    const saved = o2.state();
    const p3 = new Map([...p2].map(([k, v]) => [k, v.slice()]));
    const o3 = new AdamW(p3, OPTS);
    o3.restore(saved);
    // The saved state is a copy: stepping o2 further does not change it.
    o2.step(p2, grads[4], 1e-2);
    expect(saved.step).toBe(4);
    for (const g of grads.slice(4)) o3.step(p3, g, 1e-2);
    for (const k of Object.keys(shapes)) expect(Buffer.from(p3.get(k)!.buffer)).toEqual(Buffer.from(p1.get(k)!.buffer));
  });

  it('rejects missing gradients and mismatched state', () => {
    const params = new Map([['w', new Float32Array(3)]]);
    const opt = new AdamW(params, OPTS);
    expect(() => opt.step(params, new Map(), 1e-3)).toThrow(/gradient of "w" is missing/);
    expect(() => opt.step(params, new Map([['w', new Float32Array(2)]]), 1e-3)).toThrow(/has 2 elements, expected 3/);
    expect(() => opt.restore({ step: 1, expAvg: new Map([['w', new Float32Array(2)]]), expAvgSq: new Map([['w', new Float32Array(3)]]) })).toThrow(/exp_avg of "w"/);
    expect(opt.stepCount).toBe(0);
  });

  it('matches glob patterns against whole names', () => {
    expect(globToRegExp('*.lora_B.*').test('base_model.model.q.lora_B.weight')).toBe(true);
    expect(globToRegExp('lora_B').test('x.lora_B.weight')).toBe(false);
    expect(globToRegExp('a.b').test('aXb')).toBe(false);
  });
});
