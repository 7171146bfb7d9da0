// The `loftq` CLI end to end on generated models: quantize → export → reopen the files and
// recompute ‖W − Q − s·B·A‖ in float64 here, independently of the engine's own numbers.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors, readTensorF32, readTensorRaw } from '../engine/io/safetensors-read';
import { makeTempDir, writeTinyModel, type TinyModel } from '../test-support/tiny-model';
import { codebookLevels } from '../engine/quant/codebook';
import { loftq, loftqAsync } from '../test-support/cli';
import { cudaAvailability } from '../test-support/devices';

let tmp: string;
let modelDir: string;
let model: TinyModel;
const seed = Date.now() % 100000;

beforeAll(async () => {
  tmp = await makeTempDir('loftq-cli-');
  modelDir = join(tmp, 'model');
  model = await writeTinyModel(modelDir, { layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 96, vocab: 50, dtype: 'F32', seed });
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Plain decoder of quantized.safetensors: little-endian bit stream, absmax per block. */
async function decodeQ(runDir: string, name: string): Promise<Float64Array> {
  const file = await openSafetensors(join(runDir, 'quantized.safetensors'));
  const info = JSON.parse(file.metadata['loftq.matrices'])[name];
  const levels = codebookLevels(info.quant, info.bits);
  const absmax = await readTensorF32(file, `${name}.absmax`);
  const packed = await readTensorRaw(file, `${name}.codes`);
  const n = info.shape[0] * info.shape[1];
  const q = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let code = 0;
    for (let b = 0; b < info.bits; b++) {
      const bit = i * info.bits + b;
      code |= ((packed[bit >> 3] >> (bit & 7)) & 1) << b;
    }
    q[i] = Math.fround(levels[code] * absmax[Math.floor(i / info.block_size)]);
  }
  return q;
}

/** ‖W − Q − s·B·A‖_F / ‖W‖_F in float64, B [out, r], A [r, in]. */
function initError(w: Float32Array, q: Float64Array, b: Float32Array, a: Float32Array, out: number, inp: number, r: number, s: number): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inp; j++) {
      let ba = 0;
      for (let k = 0; k < r; k++) ba += b[i * r + k] * a[k * inp + j];
      const e = w[i * inp + j] - q[i * inp + j] - s * ba;
      num += e * e;
      den += w[i * inp + j] ** 2;
    }
  }
  return Math.sqrt(num / den);
}

describe('loftq inspect', () => {
  it('lists the architecture and every target matrix (--json)', () => {
    const r = loftq('inspect', modelDir, '--json');
    expect(r.code).toBe(0);
    const result = r.events.at(-1) as { architecture: string; targets: Array<{ name: string; shape: number[] }> };
    expect(result.architecture).toBe('llama');
    expect(result.targets).toHaveLength(14);
    expect(result.targets[0]).toMatchObject({ name: 'model.layers.0.self_attn.q_proj', shape: [64, 64] });
  });
});

describe('loftq quantize + export', () => {
  const rank = 4;
  const alpha = 8;

  it('LoftQ 2-bit: files per the contract, and the init error recomputed from the exported files', async () => {
    const run = join(tmp, 'run-loftq');
    const r = loftq('quantize', modelDir, '--out', run, '--method', 'loftq', '--bits', '2', '--rank', String(rank), '--alpha', String(alpha), '--iters', '3', '--seed', '7', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.events[0]).toMatchObject({ type: 'start', matrices: 14 });
    expect(r.events.filter((e) => e.type === 'layer')).toHaveLength(14);
    expect(r.events.at(-1)).toMatchObject({ type: 'result', status: 'done' });

    const record = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(record.status).toBe('done');
    expect(record.config).toMatchObject({ method: 'loftq', bits: 2, rank, alpha, iters: 3, block: 64, quant: 'nf', svd: 'randomized', seed: 7 });
    for (const f of ['layers.json', 'quantized.safetensors', 'adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'adapter-init/adapter_model.safetensors', 'backbone/unquantized.safetensors', 'backbone/config.json']) {
      expect(existsSync(join(run, f)), f).toBe(true);
    }
    // No full-precision copy of the target matrices in the run: they live only in quantized.safetensors.
    expect(existsSync(join(run, 'backbone', 'model.safetensors'))).toBe(false);
    const unquantized = await openSafetensors(join(run, 'backbone', 'unquantized.safetensors'));
    expect([...unquantized.tensors.keys()].sort()).toEqual([...model.tensors.keys()].filter((k) => !/_proj\.weight$/.test(k)).sort());
    expect(record.device).toMatchObject({ kind: 'cpu' });
    expect(String(record.device.reason)).toMatch(/auto: CPU, because /);
    expect(readdirSync(run).filter((f) => f.includes('tmp') || f.includes('scratch'))).toEqual([]);

    const out = join(tmp, 'export-peft');
    const e = loftq('export', run, '--format', 'peft', '--out', out, '--json');
    expect(e.code).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: rank, lora_alpha: alpha, init_lora_weights: true, bias: 'none', use_rslora: false });
    expect(config.target_modules.sort()).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    expect(config.base_model_name_or_path).toBe(join(out, 'backbone'));
    expect(config.loftq_config).toMatchObject({ method: 'loftq', bits: 2, iters: 3 });

    const layers = JSON.parse(readFileSync(join(run, 'layers.json'), 'utf8')) as Array<{ name: string; shape: [number, number]; err_q: number; err_init: number; step_errors: number[]; best_step: number; residual_top_sv: number[] }>;
    expect(layers).toHaveLength(14);
    const adapter = await openSafetensors(join(out, 'adapter_model.safetensors'));
    const backbone = await openSafetensors(join(out, 'backbone', 'model.safetensors'));
    expect([...adapter.tensors.keys()].sort()).toEqual(layers.flatMap((l) => [`base_model.model.${l.name}.lora_A.weight`, `base_model.model.${l.name}.lora_B.weight`]).sort());
    expect([...backbone.tensors.keys()].sort()).toEqual([...model.tensors.keys()].sort());
    const s = alpha / rank;
    for (const l of layers) {
      const [o, i] = l.shape;
      const w = model.tensors.get(`${l.name}.weight`)!.values;
      const q = await decodeQ(run, l.name);
      const a = await readTensorF32(adapter, `base_model.model.${l.name}.lora_A.weight`);
      const b = await readTensorF32(adapter, `base_model.model.${l.name}.lora_B.weight`);
      expect(adapter.tensors.get(`base_model.model.${l.name}.lora_A.weight`)!.shape).toEqual([rank, i]);
      expect(adapter.tensors.get(`base_model.model.${l.name}.lora_B.weight`)!.shape).toEqual([o, rank]);
      // float32 factors and float64 accumulation here vs ORT's float32 products: 1e-5 relative.
      expect(initError(w, q, b, a, o, i, rank, s)).toBeCloseTo(l.err_init, 5);
      expect(initError(w, q, new Float32Array(o * rank), a, o, i, rank, s)).toBeGreaterThan(l.err_init);
      expect(l.err_init).toBeLessThan(l.err_q);
      // The best measured step is returned; the loop may stop early once the error stops falling.
      expect(l.step_errors.length).toBeGreaterThanOrEqual(1);
      expect(l.step_errors.length).toBeLessThanOrEqual(3);
      expect(l.err_init).toBe(Math.min(...l.step_errors));
      expect(l.step_errors[l.best_step - 1]).toBe(l.err_init);
      expect(l.residual_top_sv.length).toBeGreaterThanOrEqual(rank);
      // The backbone holds exactly Q (the model is float32).
      const bq = await readTensorF32(backbone, `${l.name}.weight`);
      expect(Array.from(bq)).toEqual(Array.from(q));
    }
    // Non-target tensors are copied bit for bit.
    expect(Array.from(await readTensorF32(backbone, 'model.embed_tokens.weight'))).toEqual(Array.from(model.tensors.get('model.embed_tokens.weight')!.values));

    // merged: W' = Q + s·B·A, so ‖W − W'‖/‖W‖ is the init error.
    const merged = join(tmp, 'export-merged');
    expect(loftq('export', run, '--format', 'merged', '--out', merged).code).toBe(0);
    const mergedFile = await openSafetensors(join(merged, 'model.safetensors'));
    const l0 = layers[0];
    const w0 = model.tensors.get(`${l0.name}.weight`)!.values;
    const m0 = await readTensorF32(mergedFile, `${l0.name}.weight`);
    const zero = new Float32Array(l0.shape[0] * rank);
    expect(initError(w0, Float64Array.from(m0), zero, new Float32Array(rank * l0.shape[1]), l0.shape[0], l0.shape[1], rank, s)).toBeCloseTo(l0.err_init, 5);
  });

  it('QLoRA: B = 0, A Kaiming-uniform, init error = quantization error', async () => {
    const run = join(tmp, 'run-qlora');
    const r = loftq('quantize', modelDir, '--out', run, '--method', 'qlora', '--bits', '4', '--rank', String(rank), '--targets', 'q_proj,v_proj', '--json');
    expect(r.code).toBe(0);
    const layers = JSON.parse(readFileSync(join(run, 'layers.json'), 'utf8'));
    expect(layers.map((l: { name: string }) => l.name)).toEqual([
      'model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj',
    ]);
    const adapter = await openSafetensors(join(run, 'adapter', 'adapter_model.safetensors'));
    for (const l of layers) {
      expect(l.err_init).toBe(l.err_q);
      const b = await readTensorF32(adapter, `base_model.model.${l.name}.lora_B.weight`);
      expect(b.every((v) => v === 0)).toBe(true);
      const a = await readTensorF32(adapter, `base_model.model.${l.name}.lora_A.weight`);
      const bound = 1 / Math.sqrt(l.shape[1]);
      expect(a.every((v) => Math.abs(v) <= bound)).toBe(true);
      expect(a.some((v) => v !== 0)).toBe(true);
      // err_q recomputed from the stored Q.
      const w = model.tensors.get(`${l.name}.weight`)!.values;
      const q = await decodeQ(run, l.name);
      expect(initError(w, q, b, a, l.shape[0], l.shape[1], rank, 1)).toBeCloseTo(l.err_q, 6);
    }
  });

  it('--bits-map sets per-matrix bits (the paper\'s first-k-layers-at-4 preset plus a module rule)', () => {
    const run = join(tmp, 'run-mixed');
    const r = loftq('quantize', modelDir, '--out', run, '--bits', '2', '--bits-map', 'first:1=4,layers:1/down_proj=8', '--rank', '2', '--iters', '1', '--json');
    expect(r.code).toBe(0);
    const layers = JSON.parse(readFileSync(join(run, 'layers.json'), 'utf8')) as Array<{ name: string; bits: number }>;
    for (const l of layers) {
      const expected = l.name.startsWith('model.layers.0.') ? 4 : l.name.endsWith('down_proj') ? 8 : 2;
      expect(l.bits, l.name).toBe(expected);
    }
    const record = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(record.summary.avg_bits).toBeGreaterThan(2.5);
    expect(record.summary.avg_bits).toBeLessThan(4.5);
  });

  it('is deterministic for a fixed seed', async () => {
    const a = join(tmp, 'det-a');
    const b = join(tmp, 'det-b');
    for (const run of [a, b]) expect(loftq('quantize', modelDir, '--out', run, '--targets', 'o_proj', '--rank', '3', '--seed', '11').code).toBe(0);
    expect(readFileSync(join(a, 'adapter', 'adapter_model.safetensors'))).toEqual(readFileSync(join(b, 'adapter', 'adapter_model.safetensors')));
    expect(readFileSync(join(a, 'quantized.safetensors'))).toEqual(readFileSync(join(b, 'quantized.safetensors')));
  });
});

describe('bad input: one clear line, exit 1 (2 for usage), nothing left behind', () => {
  function expectUserError(r: ReturnType<typeof loftq>, pattern: RegExp): void {
    expect(r.code).toBe(1);
    // Progress lines may precede it; the error itself is one line, the last.
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('loftq: '))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/^loftq: /);
    expect(lines.at(-1)).toMatch(pattern);
  }

  it('missing model folder', () => {
    const out = join(tmp, 'never');
    expectUserError(loftq('quantize', join(tmp, 'nope'), '--out', out), /nope/);
    expect(existsSync(out)).toBe(false);
  });

  it('unsupported architecture', async () => {
    const dir = join(tmp, 'gpt2');
    await writeTinyModel(dir, { configOverrides: { model_type: 'gpt2' } });
    expectUserError(loftq('inspect', dir), /gpt2.*llama/);
  });

  it('rank larger than min(out, in)', () => {
    const out = join(tmp, 'never');
    expectUserError(loftq('quantize', modelDir, '--out', out, '--rank', '33'), /rank 33 .*min\(out, in\) = 32/);
    expect(existsSync(out)).toBe(false);
  });

  it('unsupported bits, device, method', () => {
    expectUserError(loftq('quantize', modelDir, '--out', join(tmp, 'never'), '--bits', '5'), /unsupported bits 5/);
    expectUserError(loftq('quantize', modelDir, '--out', join(tmp, 'never'), '--device', 'webgpu'), /--device must be one of auto, cpu, cuda, got 'webgpu'/);
    expectUserError(loftq('quantize', modelDir, '--out', join(tmp, 'never'), '--method', 'pissa'), /method/);
    expectUserError(loftq('quantize', modelDir, '--out', join(tmp, 'never'), '--bits-map', 'layers:9=4'), /matches no target/);
    expectUserError(loftq('quantize', modelDir, '--out', join(tmp, 'never'), '--iters', '101'), /--iters must be at most 100/);
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });

  it.skipIf(cudaAvailability().ok)('--device cuda where it cannot work: one line that says why, nothing written', () => {
    expectUserError(loftq('quantize', modelDir, '--out', join(tmp, 'never'), '--device', 'cuda'), /--device cuda: (the CUDA addon is not built|.*driver|.*libcublas|no CUDA GPU)/);
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });

  it('an existing output folder needs --force', () => {
    const run = join(tmp, 'run-qlora');
    expectUserError(loftq('quantize', modelDir, '--out', run, '--method', 'qlora'), /already exists.*--force/);
    expect(JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).status).toBe('done');
  });

  it('--force replaces only what loftq wrote: never a folder with a stray run.json, the source model, or a run', () => {
    // A folder of the user's that happens to hold a run.json: refused, nothing removed.
    const photos = join(tmp, 'photos');
    mkdirSync(photos);
    writeFileSync(join(photos, 'run.json'), '{"format": "loftq-run/1"}');
    writeFileSync(join(photos, 'cat.jpg'), 'meow');
    expectUserError(loftq('quantize', modelDir, '--out', photos, '--force', '--method', 'qlora'), /not a run directory made by loftq \(no \.loftq-run marker\)/);
    expect(readdirSync(photos).sort()).toEqual(['cat.jpg', 'run.json']);
    // Inside (or around) the source model: refused.
    expectUserError(loftq('quantize', modelDir, '--out', join(modelDir, 'run'), '--method', 'qlora'), /would overwrite the source model/);
    expectUserError(loftq('quantize', modelDir, '--out', tmp, '--force', '--method', 'qlora'), /would overwrite the source model/);
    // A run loftq made is replaceable, and the new one is marked again.
    const run = join(tmp, 'run-force');
    expect(loftq('quantize', modelDir, '--out', run, '--method', 'qlora', '--rank', '2').code).toBe(0);
    expect(existsSync(join(run, '.loftq-run'))).toBe(true);
    expect(loftq('quantize', modelDir, '--out', run, '--force', '--method', 'qlora', '--rank', '2').code).toBe(0);

    // export: a folder with a config.json of the user's, the source model, the run and inside it: refused.
    const userModel = join(tmp, 'my-model');
    mkdirSync(userModel);
    writeFileSync(join(userModel, 'config.json'), '{}');
    expectUserError(loftq('export', run, '--format', 'peft', '--out', userModel, '--force'), /not an export made by loftq \(no \.loftq-export marker\)/);
    expect(readdirSync(userModel)).toEqual(['config.json']);
    expectUserError(loftq('export', run, '--format', 'merged', '--out', modelDir, '--force'), /would overwrite the run's source model/);
    expect(existsSync(join(modelDir, 'config.json'))).toBe(true);
    expectUserError(loftq('export', run, '--format', 'peft', '--out', join(run, 'adapter'), '--force'), /would overwrite the run /);
    expectUserError(loftq('export', run, '--format', 'peft', '--out', run, '--force'), /would overwrite the run /);
    expect(existsSync(join(run, 'adapter', 'adapter_config.json'))).toBe(true);
    // An export loftq made is replaceable.
    const out = join(tmp, 'export-force');
    expect(loftq('export', run, '--format', 'peft', '--out', out).code).toBe(0);
    expect(existsSync(join(out, '.loftq-export'))).toBe(true);
    expect(loftq('export', run, '--format', 'peft', '--out', out, '--force').code).toBe(0);
  });

  it('usage errors exit 2', () => {
    expect(loftq('quantize', modelDir).code).toBe(2);
    expect(loftq('quantize', modelDir, '--out', 'x', '--bogus').code).toBe(2);
    expect(loftq('frobnicate').code).toBe(2);
  });

  it('NaN weights name the tensor, and the run is marked failed', async () => {
    const dir = join(tmp, 'nan-model');
    await writeTinyModel(dir, { layers: 1, hidden: 16, intermediate: 24, seed: 3 });
    const bytes = readFileSync(join(dir, 'model.safetensors'));
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString());
    const [begin] = header['model.layers.0.mlp.up_proj.weight'].data_offsets;
    bytes.writeFloatLE(NaN, 8 + Number(bytes.readBigUInt64LE(0)) + begin + 4 * 5);
    writeFileSync(join(dir, 'model.safetensors'), bytes);
    const run = join(tmp, 'run-nan');
    expectUserError(loftq('quantize', dir, '--out', run, '--rank', '2'), /model\.layers\.0\.mlp\.up_proj\.weight.*NaN/);
    const record = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/up_proj/);
    expect(existsSync(join(run, 'quantized.safetensors'))).toBe(false);
    expect(existsSync(join(run, 'adapter'))).toBe(false);
  });

  it('a truncated weights file', async () => {
    const dir = join(tmp, 'truncated');
    await writeTinyModel(dir, { layers: 1, hidden: 16, intermediate: 24 });
    const bytes = readFileSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
    expectUserError(loftq('inspect', dir), /model\.safetensors/);
  });

  it('an output path under a file (unwritable)', () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    expectUserError(loftq('quantize', modelDir, '--out', join(file, 'run')), /a-file/);
  });

  // A full disk needs a small file system of its own: a tmpfs, which only root can mount.
  const canMount = (() => {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
    try {
      execFileSync('mount', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  it.skipIf(!canMount)('a disk that fills up mid-run: the run is marked failed, no partial files', () => {
    const mnt = join(tmp, 'small-disk');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48k', 'tmpfs', mnt]);
    try {
      const run = join(mnt, 'run');
      expectUserError(loftq('quantize', modelDir, '--out', run, '--rank', '2', '--iters', '1'), /no space left on device/);
      const record = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
      expect(record.status).toBe('failed');
      expect(record.error).toMatch(/no space left/);
      expect(readdirSync(run).sort()).toEqual(['.loftq-run', 'layers.json', 'run.json']);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('export refuses an unfinished run and an unknown format', () => {
    expectUserError(loftq('export', join(tmp, 'run-nan'), '--format', 'peft', '--out', join(tmp, 'never')), /failed/);
    expectUserError(loftq('export', join(tmp, 'run-nan'), '--format', 'gguf', '--out', join(tmp, 'never')), /failed/);
    expectUserError(loftq('export', join(tmp, 'run-qlora'), '--format', 'onnx', '--out', join(tmp, 'never')), /--format must be one of peft, gguf, merged/);
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });
});

describe('cancel', () => {
  it('SIGINT mid-run marks the run cancelled and leaves no partial outputs', async () => {
    const dir = join(tmp, 'bigger');
    await writeTinyModel(dir, { layers: 6, hidden: 256, heads: 4, kvHeads: 2, intermediate: 512, seed: 5 });
    const run = join(tmp, 'run-cancel');
    let sent = false;
    const r = await loftqAsync(['quantize', dir, '--out', run, '--rank', '8', '--iters', '5', '--json'], (e, child) => {
      if (e.type === 'layer' && !sent) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/cancelled/);
    const record = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(record.status).toBe('cancelled');
    expect(readdirSync(run).sort()).toEqual(['.loftq-run', 'layers.json', 'run.json']);
    // The summary holds the means of the matrices that finished, and says how many those are.
    const layers = JSON.parse(readFileSync(join(run, 'layers.json'), 'utf8')) as Array<{ err_init: number }>;
    expect(layers.length).toBeGreaterThan(0);
    expect(record.summary).toMatchObject({ matrices: layers.length, matrices_planned: 42 });
    expect(record.summary.mean_err_init).toBeCloseTo(layers.reduce((s, l) => s + l.err_init, 0) / layers.length, 12);
  });

  it('a second Ctrl-C exits at once and still marks the run cancelled, with no partial files', async () => {
    const dir = join(tmp, 'bigger');
    const run = join(tmp, 'run-cancel-twice');
    let sent = false;
    const r = await loftqAsync(['quantize', dir, '--out', run, '--rank', '8', '--iters', '5', '--json'], (e, child) => {
      if (e.type === 'layer' && !sent) {
        sent = true;
        child.kill('SIGINT');
        child.kill('SIGINT');
      }
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    const record = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(record.status).toBe('cancelled');
    expect(readdirSync(run).filter((f) => !['.loftq-run', 'layers.json', 'run.json'].includes(f))).toEqual([]);
  });

  it('a run whose process was killed (SIGKILL) is shown as interrupted the next time it is read, its partial files gone', async () => {
    const dir = join(tmp, 'bigger');
    const run = join(tmp, 'run-killed');
    let sent = false;
    await loftqAsync(['quantize', dir, '--out', run, '--rank', '8', '--iters', '5', '--json'], (e, child) => {
      if (e.type === 'layer' && !sent) {
        sent = true;
        child.kill('SIGKILL');
      }
    });
    expect(sent).toBe(true);
    expect(JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).status).toBe('running');
    const e = loftq('export', run, '--format', 'peft', '--out', join(tmp, 'never-killed'));
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/the run is failed/);
    const record = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/^interrupted: the process running it \(pid \d+\) ended without finishing/);
    expect(readdirSync(run).filter((f) => f.includes('.tmp-') || ['quantized.safetensors', 'adapter', 'adapter-init', 'backbone'].includes(f))).toEqual([]);
  });
});
