import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, UserError } from '../errors';
import { expectUserError } from '../../test-support/expect-user-error';
import { readPeftAdapter } from '../adapter/peft';
import { listCheckpointSteps } from './checkpoint';
import { resolveTrainConfig, type TrainConfig, type TrainOptionsInput } from './config';
import { prepareTrainData, tokenFingerprint } from './packing';
import { ToyLoraProblem } from './testing';
import { meanLossEvaluator, runTraining, type GradientSource, type TrainEvent, type TrainLoopOptions } from './train-loop';

const toy = new ToyLoraProblem({
  seed: 5,
  samples: 96,
  inFeatures: 8,
  outFeatures: 6,
  rank: 2,
  alpha: 4,
  modules: ['model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.down_proj'],
});
const tokens = toy.tokens(201, 9);
const ADAPTER_CONFIG = { rank: 2, alpha: 4, rslora: false, targetModules: ['q_proj', 'down_proj'], baseModel: 'toy', loftq: {} };

function config(over: Partial<TrainOptionsInput> = {}): TrainConfig {
  return resolveTrainConfig({
    data: { path: '/toy/tokens', tokens: tokens.length, sha256: tokenFingerprint(tokens) },
    seed: 42,
    steps: 24,
    batch: 2,
    accum: 2,
    seqLen: 4,
    lr: 0.05,
    minLr: 0.005,
    warmup: 3,
    schedule: 'cosine',
    weightDecay: 0.01,
    noDecay: ['*lora_B*'],
    maxGradNorm: 0.5,
    evalEvery: 6,
    evalFraction: 0.1,
    checkpointEvery: 5,
    ...over,
  });
}

function options(runDir: string, over: Partial<TrainLoopOptions> = {}): TrainLoopOptions {
  const c = over.config ?? config();
  return {
    runDir,
    config: c,
    adapter: toy.initialAdapter(),
    adapterConfig: ADAPTER_CONFIG,
    data: prepareTrainData({ tokens, seqLen: c.seqLen, evalFraction: c.evalFraction }),
    gradients: toy,
    evaluate: meanLossEvaluator((b, p) => toy.loss(b, p), 4),
    ...over,
  };
}

const paramBytes = (p: ReadonlyMap<string, Float32Array>) => Buffer.concat([...p].map(([, v]) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
const metricLines = async (dir: string) =>
  (await readFile(join(dir, 'metrics.jsonl'), 'utf8'))
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number | string>);

/** Runs and returns the error it stopped with. */
async function stopped(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => null,
    (e: unknown) => e,
  );
}

let root: string;
const fresh = async (name: string) => {
  const dir = join(root, name);
  await mkdir(dir);
  return dir;
};
let reference: { params: Buffer; adapterFile: Buffer; optimizer: Buffer; dir: string };
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'loftq-train-'));
  const dir = await fresh('uninterrupted');
  const r = await runTraining(options(dir));
  reference = {
    dir,
    params: paramBytes(r.params),
    adapterFile: await readFile(join(dir, 'adapter', 'adapter_model.safetensors')),
    optimizer: await readFile(join(dir, 'checkpoints', 'step-24', 'optimizer.safetensors')),
  };
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function expectSameAsReference(dir: string, params: ReadonlyMap<string, Float32Array>): Promise<void> {
  expect(paramBytes(params).equals(reference.params)).toBe(true);
  expect((await readFile(join(dir, 'adapter', 'adapter_model.safetensors'))).equals(reference.adapterFile)).toBe(true);
  expect((await readFile(join(dir, 'checkpoints', 'step-24', 'optimizer.safetensors'))).equals(reference.optimizer)).toBe(true);
}

describe('the toy problem', () => {
  it('has the analytic gradients of its loss (central differences, float64)', () => {
    const params = new Map([...toy.initialAdapter(3)].flatMap((m) => [
      [`base_model.model.${m.name}.lora_A.weight`, Float64Array.from(m.loraA.data)],
      [`base_model.model.${m.name}.lora_B.weight`, Float64Array.from(m.loraB.data, (_, i) => Math.sin(i + 1) * 0.3)],
    ]));
    const batch = [tokens.subarray(0, 5), tokens.subarray(4, 9)];
    const { grads } = toy.evaluate(batch, params, true);
    const h = 1e-6;
    for (const [k, p] of params) {
      for (let i = 0; i < p.length; i += 3) {
        const keep = p[i];
        p[i] = keep + h;
        const up = toy.evaluate(batch, params, false).loss;
        p[i] = keep - h;
        const down = toy.evaluate(batch, params, false).loss;
        p[i] = keep;
        // Central differences of a polynomial of degree 4 in float64: error O(h²) + rounding 1e-16/h.
        expect(Math.abs((up - down) / (2 * h) - grads.get(k)![i])).toBeLessThan(1e-7);
      }
    }
  });
});

describe('runTraining', () => {
  it('decreases the loss, logs steps and evaluations, and writes checkpoints and the adapter', async () => {
    const lines = await metricLines(reference.dir);
    const steps = lines.filter((l) => 'loss' in l);
    const evals = lines.filter((l) => l.split === 'eval');
    expect(steps.map((l) => l.step)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    expect(Object.keys(steps[0])).toEqual(['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s', 'time']);
    const loss = steps.map((l) => l.loss as number);
    const head = (loss[0] + loss[1] + loss[2]) / 3;
    const tail = (loss[21] + loss[22] + loss[23]) / 3;
    expect(tail).toBeLessThan(0.2 * head);
    expect(steps.some((l) => (l.grad_norm as number) > 0.5)).toBe(true); // clipping was exercised
    expect(steps[2].lr).toBeCloseTo(0.05, 12);
    expect(steps[23].lr).toBeCloseTo(0.005, 12);
    expect(evals.map((l) => l.step)).toEqual([0, 6, 12, 18, 24]);
    expect(evals.at(-1)!.eval_ppl as number).toBeLessThan(evals[0].eval_ppl as number);
    expect((await readdir(join(reference.dir, 'checkpoints'))).sort()).toEqual(['step-10', 'step-15', 'step-20', 'step-24', 'step-5']);
    const adapter = await readPeftAdapter(join(reference.dir, 'adapter'));
    expect(adapter.matrices.map((m) => m.name)).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.down_proj']);
  });

  it('ends bit for bit like the uninterrupted run when cancelled and resumed', async () => {
    const dir = await fresh('cancelled');
    const ctrl = new AbortController();
    const events: TrainEvent[] = [];
    const err = await stopped(
      runTraining(
        options(dir, {
          signal: ctrl.signal,
          onEvent: (e) => {
            events.push(e);
            if (e.type === 'train_step' && e.step === 7) ctrl.abort();
          },
        }),
      ),
    );
    expect(err).toBeInstanceOf(CancelledError);
    // The cancel saved the last completed step.
    expect(events.filter((e) => e.type === 'checkpoint').map((e) => e.step)).toEqual([5, 7]);
    const r = await runTraining(options(dir));
    expect(r.resumedFrom).toBe(7);
    expect(r.step).toBe(24);
    await expectSameAsReference(dir, r.params);
  });

  it('ends bit for bit like the uninterrupted run after a crash, resuming from an older checkpoint', async () => {
    const dir = await fresh('crashed');
    const crashing: GradientSource = {
      compute: async (batch, params, ctx) => {
        if (ctx.step === 13 && ctx.micro === 1) throw new Error('out of memory');
        return toy.compute(batch, params, ctx);
      },
    };
    expect(await stopped(runTraining(options(dir, { gradients: crashing })))).toMatchObject({ message: 'out of memory' });
    const r = await runTraining(options(dir));
    expect(r.resumedFrom).toBe(10);
    await expectSameAsReference(dir, r.params);
    // Steps 11 and 12 were logged before the crash and redone: each step is in the log once.
    const steps = (await metricLines(dir)).filter((l) => 'loss' in l).map((l) => l.step);
    expect(steps).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  });

  it('drops the step in progress when cancelled inside it, and resumes identically', async () => {
    const dir = await fresh('mid-step');
    const ctrl = new AbortController();
    const cancelling: GradientSource = {
      compute: async (batch, params, ctx) => {
        if (ctx.step === 9 && ctx.micro === 1) {
          ctrl.abort();
          throw new CancelledError();
        }
        return toy.compute(batch, params, ctx);
      },
    };
    expect(await stopped(runTraining(options(dir, { gradients: cancelling, signal: ctrl.signal })))).toBeInstanceOf(CancelledError);
    const r = await runTraining(options(dir));
    expect(r.resumedFrom).toBe(8);
    await expectSameAsReference(dir, r.params);
  });

  it('stopped during an evaluation: resuming records that evaluation once, and no step twice', async () => {
    const dir = await fresh('mid-eval');
    const ctrl = new AbortController();
    let evals = 0;
    const base = options(dir);
    const evaluate: NonNullable<typeof base.evaluate> = async (args) => {
      // The third evaluation (steps 0, 6, then 12) is interrupted.
      if (++evals === 3) {
        ctrl.abort();
        throw new CancelledError();
      }
      return base.evaluate!(args);
    };
    expect(await stopped(runTraining(options(dir, { signal: ctrl.signal, evaluate })))).toBeInstanceOf(CancelledError);
    const r = await runTraining(options(dir));
    expect(r.resumedFrom).toBe(12);
    await expectSameAsReference(dir, r.params);
    const lines = await metricLines(dir);
    const evalSteps = lines.filter((l) => l.split === 'eval').map((l) => l.step);
    expect(evalSteps).toEqual([0, 6, 12, 18, 24]);
    const steps = lines.filter((l) => 'loss' in l).map((l) => l.step);
    expect(new Set(steps).size).toBe(steps.length);
  });

  it('refuses to resume with a changed config, naming the field', async () => {
    const dir = await fresh('changed');
    const ctrl = new AbortController();
    const onEvent = (e: TrainEvent) => {
      if (e.type === 'train_step' && e.step === 3) ctrl.abort();
    };
    expect(await stopped(runTraining(options(dir, { signal: ctrl.signal, onEvent })))).toBeInstanceOf(CancelledError);
    await expectUserError(
      runTraining(options(dir, { config: config({ lr: 0.04 }) })),
      /^resume: --lr was 0\.05, now 0\.04; start a new run or use the same settings$/,
    );
    await expectUserError(runTraining(options(dir, { config: config({ seqLen: 5 }) })), /^resume: --seq-len was 4, now 5;/);
    await expectUserError(runTraining(options(dir, { resume: false })), /already has training checkpoints \(latest step 3\)/);
    // Eval and checkpoint intervals may change.
    const r = await runTraining(options(dir, { config: config({ evalEvery: 0, checkpointEvery: 0 }) }));
    await expectSameAsReference(dir, r.params);
  });

  it('stops on a NaN loss with the step and a hint', async () => {
    const dir = await fresh('nan');
    const diverging: GradientSource = {
      compute: async (batch, params, ctx) => {
        const r = await toy.compute(batch, params, ctx);
        return ctx.step === 5 ? { ...r, loss: NaN } : r;
      },
    };
    const err = await stopped(runTraining(options(dir, { gradients: diverging })));
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe('loss became NaN at step 5; try a lower --lr');
    expect((await metricLines(dir)).filter((l) => 'loss' in l).map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(await listCheckpointSteps(dir)).toEqual([]);
  });

  it('stops on a non-finite gradient norm', async () => {
    const dir = await fresh('inf-grad');
    const overflowing: GradientSource = {
      compute: async (batch, params, ctx) => {
        const r = await toy.compute(batch, params, ctx);
        if (ctx.step === 2) [...r.grads.values()][0][0] = Infinity;
        return r;
      },
    };
    await expectUserError(runTraining(options(dir, { gradients: overflowing })), /^the gradient norm became Infinity at step 2; try a lower --lr$/);
  });
});
