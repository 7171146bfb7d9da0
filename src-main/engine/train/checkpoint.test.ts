import { mkdtemp, readdir, readFile, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../errors';
import { matrix } from '../tensor/matrix';
import { Rng } from '../util/random';
import type { AdapterMatrix } from '../adapter/peft';
import { AdamW } from './adamw';
import { readPeftAdapter } from '../adapter/peft';
import { layoutOf, paramsFromAdapter } from './adapter-params';
import {
  checkResumeConfig,
  findLatestCheckpoint,
  listCheckpointSteps,
  loadCheckpoint,
  replaceDirAtomic,
  saveCheckpoint,
  writeRunAdapter,
  type LoopState,
} from './checkpoint';
import { resolveTrainConfig } from './config';

const ADAPTER_CONFIG = { rank: 2, alpha: 4, rslora: false, targetModules: ['q_proj', 'down_proj'], baseModel: '/x/backbone', loftq: { method: 'loftq' } };
const DATA = { path: '/data/a.txt', tokens: 1000, sha256: 'ab'.repeat(32) };

function adapter(seed: number): AdapterMatrix[] {
  const rng = new Rng(seed);
  const mk = (r: number, c: number) => matrix(r, c, rng.fillNormal(new Float32Array(r * c)) as Float32Array);
  return [
    { name: 'model.layers.0.self_attn.q_proj', loraA: mk(2, 6), loraB: mk(5, 2) },
    { name: 'model.layers.0.mlp.down_proj', loraA: mk(2, 3), loraB: mk(4, 2) },
  ];
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loftq-ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(step: number, seed = 1) {
  const matrices = adapter(seed);
  const layout = layoutOf(matrices);
  const params = paramsFromAdapter(matrices);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const rng = new Rng(seed + 100);
  for (let i = 0; i < step; i++) {
    opt.step(params, new Map([...params].map(([k, v]) => [k, rng.fillNormal(new Float32Array(v.length)) as Float32Array])), 1e-2);
  }
  const loop: LoopState = { step, data: { epoch: 1, index: 3 }, tokensSeen: step * 64, rng: null, config: resolveTrainConfig({ data: DATA }) };
  return { layout, params, opt, loop };
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('checkpoints', () => {
  it('round-trips parameters, optimizer state and loop state exactly', async () => {
    const { layout, params, opt, loop } = setup(3);
    const path = await saveCheckpoint(dir, { layout, adapterConfig: ADAPTER_CONFIG, params, optimizer: opt.state(), loop });
    expect(path).toBe(join(dir, 'checkpoints', 'step-3'));
    expect((await readdir(path)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'state.json']);
    const ck = await loadCheckpoint(path, layout);
    expect(ck.loop).toEqual(loop);
    expect(ck.optimizer.step).toBe(3);
    const s = opt.state();
    for (const [k, v] of params) {
      expect(bytes(ck.params.get(k)!)).toEqual(bytes(v));
      expect(bytes(ck.optimizer.expAvg.get(k)!)).toEqual(bytes(s.expAvg.get(k)!));
      expect(bytes(ck.optimizer.expAvgSq.get(k)!)).toEqual(bytes(s.expAvgSq.get(k)!));
    }
    // The folder is a PEFT adapter by itself.
    const peft = await readPeftAdapter(path);
    expect(peft.matrices.map((m) => m.name)).toEqual(layout.map((e) => e.name));
    expect(peft.config).toEqual(ADAPTER_CONFIG);
    const cfg = JSON.parse(await readFile(join(path, 'adapter_config.json'), 'utf8'));
    expect(cfg.peft_type).toBe('LORA');
  });

  it('finds the latest complete checkpoint, ignoring temp folders and broken ones', async () => {
    expect(await findLatestCheckpoint(dir)).toBeNull();
    for (const step of [2, 10, 4]) {
      const { layout, params, opt, loop } = setup(step);
      await saveCheckpoint(dir, { layout, adapterConfig: ADAPTER_CONFIG, params, optimizer: opt.state(), loop });
    }
    expect(await listCheckpointSteps(dir)).toEqual([10, 4, 2]);
    expect(await findLatestCheckpoint(dir)).toEqual({ step: 10, dir: join(dir, 'checkpoints', 'step-10') });
    // A leftover of an interrupted save is not a checkpoint; a step-N without a valid state is skipped.
    await mkdir(join(dir, 'checkpoints', '.tmp-step-20-0123456789ab'));
    await mkdir(join(dir, 'checkpoints', 'step-30'));
    await writeFile(join(dir, 'checkpoints', 'step-30', 'state.json'), '{"format":"loftq-train-checkpoint/1","step":');
    expect((await findLatestCheckpoint(dir))?.step).toBe(10);
    // The next save clears the leftovers; keep prunes the oldest.
    const { layout, params, opt, loop } = setup(12);
    await saveCheckpoint(dir, { layout, adapterConfig: ADAPTER_CONFIG, params, optimizer: opt.state(), loop }, { keep: 2 });
    expect((await readdir(join(dir, 'checkpoints'))).sort()).toEqual(['step-12', 'step-30']);
  });

  it('replaces an existing step-N, and leaves nothing behind when a save fails', async () => {
    const a = setup(5, 1);
    await saveCheckpoint(dir, { layout: a.layout, adapterConfig: ADAPTER_CONFIG, params: a.params, optimizer: a.opt.state(), loop: a.loop });
    const b = setup(5, 2);
    await saveCheckpoint(dir, { layout: b.layout, adapterConfig: ADAPTER_CONFIG, params: b.params, optimizer: b.opt.state(), loop: b.loop });
    const ck = await loadCheckpoint(join(dir, 'checkpoints', 'step-5'), b.layout);
    const key = [...b.params.keys()][0];
    expect(bytes(ck.params.get(key)!)).toEqual(bytes(b.params.get(key)!));

    const target = join(dir, 'checkpoints', 'step-6');
    await expect(
      replaceDirAtomic(target, async (tmp) => {
        await writeFile(join(tmp, 'half'), 'x');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect((await readdir(join(dir, 'checkpoints'))).sort()).toEqual(['step-5']);
  });

  it('refuses a checkpoint that does not match the run adapter', async () => {
    const a = setup(1);
    const path = await saveCheckpoint(dir, { layout: a.layout, adapterConfig: ADAPTER_CONFIG, params: a.params, optimizer: a.opt.state(), loop: a.loop });
    const other = layoutOf(adapter(1)).map((e, i) => (i === 0 ? { ...e, rank: 3 } : e));
    await expect(loadCheckpoint(path, other)).rejects.toThrow(/lora_A.weight is F32 \[2, 6\], the run's adapter needs F32 \[3, 6\]/);
  });

  it('writes RUN_DIR/adapter atomically', async () => {
    const a = setup(0);
    await writeRunAdapter(dir, a.layout, a.params, ADAPTER_CONFIG);
    await writeRunAdapter(dir, a.layout, a.params, ADAPTER_CONFIG);
    expect(await readdir(dir)).toEqual(['adapter']);
    const peft = await readPeftAdapter(join(dir, 'adapter'));
    expect(bytes(peft.matrices[1].loraB.data)).toEqual(bytes(a.params.get('base_model.model.model.layers.0.mlp.down_proj.lora_B.weight')!));
    await expect(readPeftAdapter(join(dir, 'nothing'))).rejects.toThrow(/has no adapter/);
  });
});

describe('checkResumeConfig', () => {
  const saved = resolveTrainConfig({ data: DATA, lr: 0.0002 });
  it('accepts the same config, and changes of --eval-every and --checkpoint-every', () => {
    expect(() => checkResumeConfig(saved, resolveTrainConfig({ data: { ...DATA, path: '/moved/a.txt' }, lr: 0.0002, evalEvery: 7, checkpointEvery: 3 }))).not.toThrow();
  });

  it('names the first differing field', () => {
    const now = resolveTrainConfig({ data: DATA, lr: 0.0001, batch: 8 });
    expect(() => checkResumeConfig(saved, now)).toThrow(UserError);
    expect(() => checkResumeConfig(saved, resolveTrainConfig({ data: DATA, lr: 0.0001 }))).toThrow(
      'resume: --lr was 0.0002, now 0.0001; start a new run or use the same settings',
    );
    expect(() => checkResumeConfig(saved, now)).toThrow(/^resume: --batch was 4, now 8;/);
    expect(() => checkResumeConfig(saved, resolveTrainConfig({ data: { ...DATA, tokens: 999 }, lr: 0.0002 }))).toThrow(
      /^resume: --data was \/data\/a.txt \(1000 tokens, sha256 abababababab\), now \/data\/a.txt \(999 tokens/,
    );
    expect(() => checkResumeConfig(saved, resolveTrainConfig({ data: DATA, lr: 0.0002, noDecay: ['*lora_B*'] }))).toThrow(
      'resume: --no-decay was none, now *lora_B*;',
    );
    expect(() => checkResumeConfig(saved, resolveTrainConfig({ data: DATA, lr: 0.0002, evalData: DATA }))).toThrow(/^resume: --eval-data was not set, now/);
  });
});
