// One decoder layer's backward graph against central finite differences of the float64
// reference layer, for f(x, θ) = Σ dy ⊙ y(x; θ): its gradient is exactly what the graph
// returns (dx, dA, dB; with weightGrads also every backbone weight's gradient).
// Tolerance: the graph runs in float32 (relative rounding ~1e-7 per op, a few hundred ops
// deep: ~1e-5 of the gradient's scale); the finite differences run in float64 with h = 1e-4
// (truncation ~h²·f''' ~ 1e-8, cancellation ~1e-16·|f|/h ~ 1e-11). Each sampled entry must
// agree within 1e-3 of the largest |entry| of its gradient tensor, leaving two orders of
// margin while catching any wrong term (those are of the gradient's own scale).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, writeTinyModel, type TinyModelOptions } from '../../test-support/tiny-model';
import { LLAMA_MODULES, type LinearModule } from '../io/targets';
import { decoderWeightInputs } from './decoder-graph';
import { causalMask, ropeTables } from './rope';
import { loadModelWeights } from './weights';
import { hostTensor, OrtRuntime, type HostTensors } from '../tensor/ort-runtime';
import { Rng } from '../util/random';
import { graphSpec } from '../grad/backprop';
import { buildDecoderBackwardGraph, gradName, loraGradNames } from './decoder-graph';
import { referenceLayer, withRandomLora } from '../../test-support/reference-forward';

const seed = Date.now() % 1_000_000;
let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-grad-layer-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const cases: Array<[string, TinyModelOptions, LinearModule[]]> = [
  ['llama, GQA, LoRA on every linear module', { architecture: 'llama', layers: 1, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 20 }, [...LLAMA_MODULES]],
  ['qwen2, q/k/v biases, LoRA on q/v/up/down', { architecture: 'qwen2', layers: 1, hidden: 16, heads: 4, kvHeads: 1, intermediate: 20, vocab: 20 }, ['q_proj', 'v_proj', 'up_proj', 'down_proj']],
  ['mistral, sliding window 3', { architecture: 'mistral', layers: 1, hidden: 16, heads: 2, kvHeads: 2, intermediate: 20, vocab: 20, configOverrides: { sliding_window: 3 } }, ['k_proj', 'o_proj', 'gate_proj']],
];

describe('decoder layer backward graph vs finite differences', () => {
  for (const [label, options, modules] of cases) {
    it(`${label} (seed ${seed})`, async () => {
      const dir = join(tmp, label.split(',')[0]);
      await writeTinyModel(dir, { ...options, seed, dtype: 'F32', std: 0.3 });
      const rng = new Rng(seed + 7);
      const weights = withRandomLora(await loadModelWeights(dir), modules, 3, 2, rng);
      const c = weights.config;
      const T = 7, H = c.hiddenSize;
      const spec = graphSpec(weights);
      const layer = weights.layers[0];
      const x = rng.fillNormal(new Float32Array(T * H), 1) as Float32Array;
      const dy = rng.fillNormal(new Float32Array(T * H), 1) as Float32Array;

      const runtime = new OrtRuntime({ provider: 'cpu', threads: 1 });
      let out: HostTensors, full: HostTensors;
      try {
        const session = await runtime.compile('bw', () => buildDecoderBackwardGraph(c, spec));
        const fullSession = await runtime.compile('bw-full', () => buildDecoderBackwardGraph(c, spec, { weightGrads: true }));
        const { cos, sin } = ropeTables(c, T);
        const window = c.raw.sliding_window;
        const feeds: HostTensors = {
          x: hostTensor(x, [T, H]),
          dy: hostTensor(dy, [T, H]),
          cos: hostTensor(cos, [T, c.headDim]),
          sin: hostTensor(sin, [T, c.headDim]),
          mask: hostTensor(causalMask(T, typeof window === 'number' ? window : null), [T, T]),
        };
        for (const name of decoderWeightInputs(spec)) feeds[name] = hostTensor(layer.tensors.get(name)!, layer.shapes.get(name)!);
        out = await session.run(feeds);
        full = await fullSession.run(feeds);
      } finally {
        await runtime.dispose();
      }

      // f = Σ dy ⊙ y, with one parameter (or x) replaced.
      const f = (xv: Float64Array, override?: [string, Float64Array]) => {
        const y = referenceLayer(c, (n) => (override && n === override[0] ? override[1] : layer.tensors.get(n)), 2, xv, T);
        let s = 0;
        for (let i = 0; i < y.length; i++) s += y[i] * dy[i];
        return s;
      };
      const h = 1e-4;
      const x64 = Float64Array.from(x);
      const check = (what: string, analytic: Float32Array, numeric: (i: number) => number, samples: number) => {
        let scale = 0;
        for (const v of analytic) scale = Math.max(scale, Math.abs(v));
        expect(scale, `${what}: gradient is zero (seed ${seed})`).toBeGreaterThan(1e-6);
        let worst = 0;
        for (let s = 0; s < samples; s++) {
          const i = rng.nextUint32() % analytic.length;
          worst = Math.max(worst, Math.abs(analytic[i] - numeric(i)) / scale);
        }
        expect(worst, `${what} (seed ${seed})`).toBeLessThan(1e-3);
      };

      check('dx', out.dx.data as Float32Array, (i) => {
        const xp = Float64Array.from(x64), xm = Float64Array.from(x64);
        xp[i] += h;
        xm[i] -= h;
        return (f(xp) - f(xm)) / (2 * h);
      }, 12);
      for (const m of modules) {
        for (const [key, grad] of [[`${m}.lora_A`, loraGradNames(m).dA], [`${m}.lora_B`, loraGradNames(m).dB]] as const) {
          const p0 = Float64Array.from(layer.tensors.get(key)!);
          check(key, out[grad].data as Float32Array, (i) => {
            const pp = Float64Array.from(p0), pm = Float64Array.from(p0);
            pp[i] += h;
            pm[i] -= h;
            return (f(x64, [key, pp]) - f(x64, [key, pm])) / (2 * h);
          }, 4);
        }
      }
      for (const m of LLAMA_MODULES.filter((mm) => !modules.includes(mm))) expect(out[loraGradNames(m).dA]).toBeUndefined();
      // The backbone is frozen: the LoRA graph outputs dx and the adapters' gradients only.
      expect(Object.keys(out).sort()).toEqual(['dx', ...modules.flatMap((m) => [loraGradNames(m).dA, loraGradNames(m).dB])].sort());

      // With weightGrads (pretraining): every backbone input's gradient too; same dx.
      expect(Object.keys(full).sort()).toEqual(['dx', ...decoderWeightInputs(spec).map(gradName)].sort());
      const dx = out.dx.data as Float32Array, dxFull = full.dx.data as Float32Array;
      for (let i = 0; i < dx.length; i++) expect(dxFull[i]).toBeCloseTo(dx[i], 5);
      for (const key of decoderWeightInputs(spec).filter((n) => !n.includes('lora'))) {
        const p0 = Float64Array.from(layer.tensors.get(key)!);
        check(key, full[gradName(key)].data as Float32Array, (i) => {
          const pp = Float64Array.from(p0), pm = Float64Array.from(p0);
          pp[i] += h;
          pm[i] -= h;
          return (f(x64, [key, pp]) - f(x64, [key, pm])) / (2 * h);
        }, 3);
      }
    });
  }
});
