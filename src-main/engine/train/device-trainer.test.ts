// Training with the parameters and AdamW on the device (device-trainer.ts, the parameter
// block of tensor/cuda-parameters.ts), on CUDA (the GPU machine) and on the CUDA operations
// over the JavaScript model of the kernels (everywhere): the block's AdamW launch equals
// adamw.ts bit for bit (accumulated gradients divided, clipped, decay per run of tensors);
// DeviceTrainer's steps follow HostTrainer's over the CPU backward (fp32; bf16 within its
// tolerance); and a trainer loaded from another's parameters and moments continues exactly.
// Fresh random inputs each run (seed printed).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frobeniusRelError, maxRelError } from '../../test-support/max-relative-error';
import { neuralBackends, type Backend } from '../../test-support/neural-backends';
import { withRandomLora } from '../../test-support/reference-forward';
import { makeTempDir, writeTinyModel } from '../../test-support/tiny-model';
import { adapterKey } from '../adapter/peft';
import { LLAMA_MODULES, modulePath } from '../io/targets';
import { loadModelWeights, type WeightSet } from '../model/weights';
import { Rng } from '../util/random';
import { AdamW, adamwStepConstants } from './adamw';
import type { ParamMap } from './adapter-params';
import { DeviceTrainer } from './device-trainer';
import { LoraGradientSource } from './lora-gradient-source';
import { HostTrainer } from './host-trainer';
import type { StepInput } from './train-loop';

const seed = Date.now() % 1_000_000;
const ADAMW = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, noDecay: ['*.lora_B.weight'] };

/** The LoRA factors of a weight set as the loop's parameters (PEFT names). */
function paramsOf(w: WeightSet): ParamMap {
  const out: ParamMap = new Map();
  w.layers.forEach((layer, l) => {
    for (const m of w.lora!.modules) {
      out.set(adapterKey(modulePath(l, m), 'lora_A'), layer.tensors.get(`${m}.lora_A`)!.slice());
      out.set(adapterKey(modulePath(l, m), 'lora_B'), layer.tensors.get(`${m}.lora_B`)!.slice());
    }
  });
  return out;
}

const copyMap = (m: ReadonlyMap<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, v.slice()]));

for (const [name, enabled, skipped, open] of neuralBackends()) (enabled ? describe : describe.skip)(`training on ${name}${skipped}`, () => {
  let tmp: string;
  let device: Backend;
  let base: WeightSet;
  beforeAll(async () => {
    tmp = await makeTempDir('loftq-device-trainer-');
    device = open();
    await writeTinyModel(join(tmp, 'm'), { architecture: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 40, seed, dtype: 'F32', std: 0.3 });
    base = await loadModelWeights(join(tmp, 'm'));
  });
  afterAll(async () => {
    expect(device?.live() ?? 0).toBe(0);
    await device?.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it(`a parameter block's AdamW launch equals adamw.ts bit for bit (seed ${seed})`, async () => {
    const rng = new Rng(seed);
    const shapes = [[3, 70], [5, 13], [64, 2]] as const;
    const names = ['x.lora_A.weight', 'y.lora_A.weight', 'z.lora_B.weight'];
    const random = (n: number, f: (v: number) => number = (v) => v) => Float32Array.from(rng.fillNormal(new Float32Array(n), 1), f);
    const value = shapes.map(([r, c]) => random(r * c));
    const grad = shapes.map(([r, c]) => random(r * c, (v) => v * 3));
    const m = shapes.map(([r, c]) => random(r * c, (v) => v * 0.1));
    const v = shapes.map(([r, c]) => random(r * c, (x) => x * x * 0.01));
    const block = device.neuralOps('fp32').parameterBlock(shapes);
    try {
      shapes.forEach((_, i) => {
        block.write('value', i, value[i]);
        block.write('gradient', i, grad[i]);
        block.write('expAvg', i, m[i]);
        block.write('expAvgSq', i, v[i]);
      });
      let ss = 0;
      for (const g of grad) for (const x of g) ss += x * x;
      expect(Math.abs((await block.gradientSumSquares()) - ss) / ss).toBeLessThan(1e-12);
      // The sum of two micro-batches, clipped by 0.7, at step 3; the B factor does not decay.
      const lr = 3e-3;
      const c = adamwStepConstants(ADAMW, 3, lr);
      block.adamw(0, 2, c, true, 2, 0.7);
      block.adamw(2, 3, c, false, 2, 0.7);
      const host = new AdamW(new Map(names.map((n, i) => [n, value[i]])), ADAMW);
      host.restore({ step: 2, expAvg: new Map(names.map((n, i) => [n, m[i]])), expAvgSq: new Map(names.map((n, i) => [n, v[i]])) });
      const params = new Map(names.map((n, i) => [n, value[i].slice()]));
      const mean = new Map(names.map((n, i) => [n, Float32Array.from(grad[i], (g) => Math.fround(Math.fround(g / 2) * 0.7))]));
      host.step(params, mean, lr);
      const state = host.state();
      const [pv, mv, vv] = [await block.read('value'), await block.read('expAvg'), await block.read('expAvgSq')];
      names.forEach((n, i) => {
        expect(pv[i], n).toEqual(params.get(n));
        expect(mv[i], n).toEqual(state.expAvg.get(n));
        expect(vv[i], n).toEqual(state.expAvgSq.get(n));
      });
    } finally {
      block.dispose();
    }
  });

  const batches = (rng: Rng, steps: number, accum: number, rows: number, T: number) =>
    Array.from({ length: steps }, () => Array.from({ length: accum }, () => Array.from({ length: rows }, () => Int32Array.from({ length: T + 1 }, () => rng.nextUint32() % base.config.vocabSize))));
  const input = (micro: Int32Array[][], lr: number, maxGradNorm: number): StepInput => ({ accum: micro.length, maxGradNorm, lr, batch: (i) => micro[i] });

  it(`DeviceTrainer's steps follow HostTrainer's over the CPU backward: fp32 closely, bf16 within its tolerance (seed ${seed})`, async () => {
    const rng = new Rng(seed + 1);
    const weights = withRandomLora(base, [...LLAMA_MODULES], 2, 2, rng);
    const data = batches(rng, 3, 2, 2, 7);
    // Clipping at 0.05 is active on these gradients (checked below), so the norms must agree too.
    const run = async (trainer: HostTrainer | DeviceTrainer) => {
      await trainer.load(paramsOf(weights), null);
      const steps = [];
      for (let s = 0; s < data.length; s++) steps.push(await trainer.step(s + 1, input(data[s], 1e-2, 0.05)));
      return { steps, params: await trainer.parameters(), state: await trainer.optimizerState() };
    };
    const fp32 = new DeviceTrainer(weights, device.neuralOps('fp32', { scoreBlockBytes: 1 }), 'test', ADAMW);
    const bf16 = new DeviceTrainer(weights, device.neuralOps('bf16'), 'test', ADAMW);
    const cpu = new LoraGradientSource(withRandomLora(base, [...LLAMA_MODULES], 2, 2, new Rng(seed + 1)));
    try {
      const want = await run(new HostTrainer(cpu, ADAMW));
      const got = await run(fp32);
      const half = await run(bf16);
      expect(want.steps[0].gradNorm).toBeGreaterThan(0.05);
      for (let s = 0; s < data.length; s++) {
        expect(Math.abs(got.steps[s].loss - want.steps[s].loss) / want.steps[s].loss, `fp32 loss ${s}`).toBeLessThan(1e-5);
        expect(Math.abs(got.steps[s].gradNorm - want.steps[s].gradNorm) / want.steps[s].gradNorm, `fp32 norm ${s}`).toBeLessThan(1e-4);
        expect(Math.abs(half.steps[s].loss - want.steps[s].loss) / want.steps[s].loss, `bf16 loss ${s}`).toBeLessThan(1e-2);
      }
      expect(got.state.step).toBe(3);
      for (const [k, p] of want.params) {
        expect(maxRelError(got.params.get(k)!, p), `fp32 ${k}`).toBeLessThan(1e-4);
        // bf16 gradients steer Adam's near-sign updates (±lr a step) apart where an entry's
        // gradient is near zero; over a whole tensor the parameters stay close (Frobenius-
        // relative ≤ 0.026 over 13 seeds, where the updates themselves are ~0.15 of the values).
        expect(frobeniusRelError(half.params.get(k)!, p), `bf16 ${k}`).toBeLessThan(0.06);
      }
      // After its updates the bf16 trainer evaluates with its refreshed operands.
      const held = data[0][0];
      const lossFp32 = await fp32.meanLoss(held);
      expect(Math.abs((await bf16.meanLoss(held)) - lossFp32) / lossFp32).toBeLessThan(1e-2);
    } finally {
      await fp32.dispose();
      await bf16.dispose();
    }
  });

  it(`a trainer loaded from another's parameters and moments continues bit for bit; a cancelled step changes nothing (seed ${seed})`, async () => {
    const rng = new Rng(seed + 2);
    const weights = withRandomLora(base, ['q_proj', 'v_proj', 'down_proj'], 3, 1.5, rng);
    const data = batches(rng, 4, 1, 3, 6);
    const nn = device.neuralOps('bf16');
    const a = new DeviceTrainer(weights, nn, 'test', ADAMW);
    const b = new DeviceTrainer(weights, nn, 'test', ADAMW);
    try {
      await a.load(paramsOf(weights), null);
      for (let s = 0; s < 2; s++) await a.step(s + 1, input(data[s], 5e-3, 1));
      await b.load(copyMap(await a.parameters()), await a.optimizerState());
      for (let s = 2; s < 4; s++) {
        const [ra, rb] = [await a.step(s + 1, input(data[s], 5e-3, 1)), await b.step(s + 1, input(data[s], 5e-3, 1))];
        expect(rb.loss).toBe(ra.loss);
        expect(rb.gradNorm).toBe(ra.gradNorm);
      }
      const [pa, pb] = [await a.parameters(), await b.parameters()];
      for (const [k, p] of pa) expect(pb.get(k), k).toEqual(p);
      expect((await b.optimizerState()).step).toBe(4);
      // A step cut short by cancel leaves the trainer as it was.
      const ctrl = new AbortController();
      ctrl.abort();
      await expect(b.step(5, { ...input(data[0], 5e-3, 1), signal: ctrl.signal })).rejects.toThrow(/cancel/i);
      for (const [k, p] of await b.parameters()) expect(p, k).toEqual(pb.get(k));
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});
