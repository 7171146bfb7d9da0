// `loftq quantize --device cuda` end to end (GPU machine only; skipped elsewhere with the
// reason): the same run on the CPU and on CUDA gives the same QLoRA codes and LoftQ errors
// within 0.5%, and ‖W − Q − s·B·A‖/‖W‖ recomputed in float64 from the exported files
// matches what the run recorded.
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors, readTensorF32, readTensorRaw } from '../engine/io/safetensors-read';
import { codebookLevels } from '../engine/quant/codebook';
import { loftq } from '../test-support/cli';
import { cudaAvailability, requireCuda } from '../test-support/devices';
import { makeTempDir, writeTinyModel, type TinyModel } from '../test-support/tiny-model';

const cuda = cudaAvailability();
const run = cuda.ok || requireCuda();
const title = cuda.ok ? 'loftq quantize --device cuda' : `loftq quantize --device cuda: skipped, ${cuda.reason}`;

let tmp: string;
let modelDir: string;
let model: TinyModel;

interface Layer {
  name: string;
  shape: [number, number];
  err_q: number;
  err_init: number;
  step_errors: number[];
}

(run ? describe : describe.skip)(title, () => {
  beforeAll(async () => {
    tmp = await makeTempDir('loftq-cuda-');
    modelDir = join(tmp, 'model');
    model = await writeTinyModel(modelDir, { layers: 2, hidden: 256, heads: 8, kvHeads: 4, intermediate: 640, vocab: 300, dtype: 'BF16', seed: 11 });
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const quantize = (name: string, device: string, ...extra: string[]) => {
    const out = join(tmp, name);
    const r = loftq('quantize', modelDir, '--out', out, '--device', device, '--rank', '16', '--alpha', '32', '--seed', '5', '--json', ...extra);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return out;
  };
  const layers = (dir: string) => JSON.parse(readFileSync(join(dir, 'layers.json'), 'utf8')) as Layer[];
  const record = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));

  it('auto picks the GPU and says so; QLoRA codes are identical to the CPU run', async () => {
    const gpu = quantize('qlora-gpu', 'auto', '--method', 'qlora', '--bits', '3');
    const cpu = quantize('qlora-cpu', 'cpu', '--method', 'qlora', '--bits', '3');
    expect(record(gpu).device).toMatchObject({ kind: 'cuda', choice: 'auto' });
    expect(String(record(gpu).device.reason)).toMatch(/^auto: .* answered$/);
    expect(record(cpu).device).toMatchObject({ kind: 'cpu', reason: 'chosen with --device cpu' });
    const [g, c] = [await openSafetensors(join(gpu, 'quantized.safetensors')), await openSafetensors(join(cpu, 'quantized.safetensors'))];
    expect([...g.tensors.keys()].sort()).toEqual([...c.tensors.keys()].sort());
    for (const name of g.tensors.keys()) expect(Buffer.compare(await readTensorRaw(g, name), await readTensorRaw(c, name)), name).toBe(0);
  });

  it('LoftQ 2-bit: errors within 0.5% of the CPU run, and recomputed in float64 from the exported files', async () => {
    const gpu = quantize('loftq-gpu', 'cuda', '--bits', '2', '--iters', '5');
    const cpu = quantize('loftq-cpu', 'cpu', '--bits', '2', '--iters', '5');
    const [gl, cl] = [layers(gpu), layers(cpu)];
    expect(gl).toHaveLength(14);
    gl.forEach((l, i) => {
      expect(l.err_q).toBeCloseTo(cl[i].err_q, 12);
      expect(Math.abs(l.err_init / cl[i].err_init - 1), l.name).toBeLessThan(0.005);
    });
    const out = join(tmp, 'loftq-gpu-peft');
    expect(loftq('export', gpu, '--format', 'peft', '--out', out).code).toBe(0);
    const adapter = await openSafetensors(join(out, 'adapter_model.safetensors'));
    const q = await openSafetensors(join(gpu, 'quantized.safetensors'));
    const info = JSON.parse(q.metadata['loftq.matrices']);
    const s = 32 / 16;
    for (const l of gl) {
      const [o, n] = l.shape;
      const w = model.tensors.get(`${l.name}.weight`)!.values;
      const levels = codebookLevels(info[l.name].quant, info[l.name].bits);
      const absmax = await readTensorF32(q, `${l.name}.absmax`);
      const packed = await readTensorRaw(q, `${l.name}.codes`);
      const a = await readTensorF32(adapter, `base_model.model.${l.name}.lora_A.weight`);
      const b = await readTensorF32(adapter, `base_model.model.${l.name}.lora_B.weight`);
      let num = 0;
      let den = 0;
      for (let i = 0; i < o; i++) {
        for (let j = 0; j < n; j++) {
          const idx = i * n + j;
          const code = (packed[idx >> 2] >> ((idx & 3) * 2)) & 3;
          const qv = Math.fround(levels[code] * absmax[Math.floor(idx / 64)]);
          let ba = 0;
          for (let k = 0; k < 16; k++) ba += b[i * 16 + k] * a[k * n + j];
          num += (w[idx] - qv - s * ba) ** 2;
          den += w[idx] ** 2;
        }
      }
      expect(Math.abs(Math.sqrt(num / den) / l.err_init - 1), l.name).toBeLessThan(1e-5);
    }
  });

  it("llama.cpp's q4_0 and q8_0 on the GPU: QLoRA codes and scales identical to the CPU run, LoftQ errors within 0.5%", async () => {
    for (const quant of ['q4_0', 'q8_0']) {
      const gpu = quantize(`qlora-${quant}-gpu`, 'auto', '--method', 'qlora', '--quant', quant);
      const cpu = quantize(`qlora-${quant}-cpu`, 'cpu', '--method', 'qlora', '--quant', quant);
      expect(record(gpu).device).toMatchObject({ kind: 'cuda', choice: 'auto' });
      const [g, c] = [await openSafetensors(join(gpu, 'quantized.safetensors')), await openSafetensors(join(cpu, 'quantized.safetensors'))];
      for (const name of g.tensors.keys()) expect(Buffer.compare(await readTensorRaw(g, name), await readTensorRaw(c, name)), `${quant} ${name}`).toBe(0);
      const [gl, cl] = [layers(quantize(`loftq-${quant}-gpu`, 'cuda', '--quant', quant)), layers(quantize(`loftq-${quant}-cpu`, 'cpu', '--quant', quant))];
      gl.forEach((l, i) => {
        expect(l.err_q, l.name).toBeCloseTo(cl[i].err_q, 12);
        expect(Math.abs(l.err_init / cl[i].err_init - 1), l.name).toBeLessThan(0.005);
      });
    }
  });
});
