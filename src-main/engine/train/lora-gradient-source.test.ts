// The real-model GradientSource: its loss is the forward pass's mean loss, its gradients are
// those of that loss (central differences along a random direction), it is deterministic,
// and it neither copies nor modifies the backbone or the parameters.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapterKey } from '../adapter/peft';
import { modulePath, type LinearModule } from '../io/targets';
import { loadModelWeights, type WeightSet } from '../model/weights';
import { makeTempDir, writeTinyModel } from '../../test-support/tiny-model';
import { Rng } from '../util/random';
import { LoraGradientSource } from './lora-gradient-source';

let tmp: string;
let weights: WeightSet;
let source: LoraGradientSource;
const params = new Map<string, Float32Array>();
const MODULES: LinearModule[] = ['q_proj', 'v_proj', 'down_proj'];
const R = 2;

beforeAll(async () => {
  tmp = await makeTempDir('loftq-lgs-');
  await writeTinyModel(join(tmp, 'm'), { layers: 2, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 40, seed: 3, std: 0.3 });
  const base = await loadModelWeights(join(tmp, 'm'));
  const rng = new Rng(11);
  const layers = base.layers.map((layer, l) => {
    const tensors = new Map(layer.tensors);
    const shapes = new Map(layer.shapes);
    for (const m of MODULES) {
      const [out, inF] = layer.shapes.get(m)!;
      const a = rng.fillNormal(new Float32Array(R * inF), 0.3) as Float32Array;
      const b = rng.fillNormal(new Float32Array(out * R), 0.3) as Float32Array;
      tensors.set(`${m}.lora_A`, new Float32Array(a.length));
      tensors.set(`${m}.lora_B`, new Float32Array(b.length));
      shapes.set(`${m}.lora_A`, [R, inF]);
      shapes.set(`${m}.lora_B`, [out, R]);
      params.set(adapterKey(modulePath(l, m), 'lora_A'), a);
      params.set(adapterKey(modulePath(l, m), 'lora_B'), b);
    }
    return { tensors, shapes };
  });
  weights = { ...base, layers, lora: { modules: MODULES, scaling: 2 } };
  source = new LoraGradientSource(weights);
});

afterAll(async () => {
  await source.dispose();
  await rm(tmp, { recursive: true, force: true });
});

const rows = [Int32Array.from([1, 5, 9, 2, 33, 7, 7, 12, 3]), Int32Array.from([4, 4, 18, 39, 0, 21, 6, 2, 8])];

describe('LoraGradientSource', () => {
  it('loss = the mean forward loss; gradients match central differences; deterministic; nothing copied or modified', async () => {
    const q0 = weights.layers[0].tensors.get('q_proj')!;
    const before = new Map([...params].map(([k, v]) => [k, v.slice()]));
    const r1 = await source.compute(rows, params, { step: 1, micro: 0 });
    const r2 = await source.compute(rows, params, { step: 1, micro: 0 });
    expect(r2.loss).toBe(r1.loss);
    for (const [k, g] of r1.grads) expect(r2.grads.get(k)).toEqual(g);
    expect([...r1.grads.keys()]).toEqual([...params.keys()]);
    for (const [k, v] of params) expect(v).toEqual(before.get(k));
    expect(weights.layers[0].tensors.get('q_proj')).toBe(q0);
    expect(weights.layers[1].tensors.get('v_proj.lora_B')).toBe(params.get(adapterKey(modulePath(1, 'v_proj'), 'lora_B')));

    const mean = await source.meanLoss(rows, params);
    expect(Math.abs(r1.loss - mean)).toBeLessThan(1e-5);

    const rng = new Rng(5);
    const dir = new Map([...params].map(([k, v]) => [k, rng.fillNormal(new Float32Array(v.length), 1) as Float32Array]));
    const shifted = (eps: number) => new Map([...params].map(([k, v]) => [k, v.map((x, i) => x + eps * dir.get(k)![i])]));
    const eps = 1e-2;
    const fd = ((await source.meanLoss(rows, shifted(eps))) - (await source.meanLoss(rows, shifted(-eps)))) / (2 * eps);
    let analytic = 0;
    for (const [k, g] of r1.grads) g.forEach((x, i) => (analytic += x * dir.get(k)![i]));
    expect(Math.abs(fd - analytic)).toBeLessThan(2e-2 * Math.abs(analytic) + 1e-4);
  });
});
