// The quantized weight source keeps Q compact (packed codes + absmax) and dequantizes one layer
// at a time, exactly as quantized.safetensors decodes.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, writeTinyModel } from '../../test-support/tiny-model';
import { runQuantize } from '../jobs/quantize-job';
import { QUANTIZE_DEFAULTS } from '../jobs/quantize-options';
import { QuantizedFile } from '../runs/quantized-file';
import { layerTensors, loadQuantizedWeights } from './weights';

let tmp: string;
let run: string;

beforeAll(async () => {
  tmp = await makeTempDir('loftq-weights-');
  await writeTinyModel(join(tmp, 'model'), { layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 40, seed: 5 });
  run = join(tmp, 'run');
  await runQuantize({ ...QUANTIZE_DEFAULTS, model: join(tmp, 'model'), out: run, bits: 2, rank: 2, iters: 1 });
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loadQuantizedWeights', () => {
  it('holds Q compact and dequantizes a layer on demand, equal to the stored Q', async () => {
    const set = await loadQuantizedWeights(run);
    const file = await QuantizedFile.open(join(run, 'quantized.safetensors'));
    for (let l = 0; l < 2; l++) {
      const layer = set.layers[l];
      // No float copy of the targets is held...
      for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']) {
        expect(layer.tensors.has(m), m).toBe(false);
        expect(layer.deferred?.has(m), m).toBe(true);
      }
      // ...and the one made for a layer's run is exactly the stored Q.
      const tensors = layerTensors(layer);
      const prefix = `model.layers.${l}`;
      expect(Array.from(tensors.get('q_proj')!)).toEqual(Array.from(await file.dequantize(`${prefix}.self_attn.q_proj`)));
      expect(Array.from(tensors.get('down_proj')!)).toEqual(Array.from(await file.dequantize(`${prefix}.mlp.down_proj`)));
      expect(tensors.get('input_layernorm')).toBe(layer.tensors.get('input_layernorm'));
      expect(layer.shapes.get('gate_proj')).toEqual([48, 32]);
    }
  });
});
