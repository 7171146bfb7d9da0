// The training loop: for each optimizer step (a Trainer's: `accum` micro-batches of `batch`
// packed rows in the seeded data order → gradients, averaged → clipping → AdamW at the
// scheduled learning rate; on the host, optimizer-step.ts, or on a device, device-trainer.ts)
// → a metrics line.
// Every evalEvery steps (and at step 0 and the last step) the held-out rows are evaluated
// through a callback; every checkpointEvery steps (and at the last step, and on cancel) a
// checkpoint is written, and RUN_DIR/adapter/ is updated.
//
// Determinism: everything that decides the weights (parameters, AdamW moments and step,
// data position) is in the checkpoint in exact float32, and the learning rate and data order
// are functions of (config, step); so a run stopped and resumed from any checkpoint ends bit
// for bit where an uninterrupted run does — provided the Trainer is deterministic (a
// stochastic GradientSource, e.g. dropout, must derive its randomness from ctx.step and ctx.micro).
//
// Cancel (the AbortSignal) is honoured between steps, and inside one when the GradientSource
// or the evaluator gives up on it: the step in progress is dropped, a checkpoint of the last
// completed step is written, and a CancelledError is thrown.
import { CancelledError, UserError } from '../errors';
import type { AdapterConfigInput, AdapterMatrix } from '../adapter/peft';
import type { AdamWOptions, AdamWState } from './adamw';
import { layoutOf, paramsFromAdapter, type AdapterLayoutEntry, type ParamMap } from './adapter-params';
import { checkResumeConfig, findLatestCheckpoint, loadCheckpoint, saveCheckpoint, writeRunAdapter, type LoopState } from './checkpoint';
import { HostTrainer } from './host-trainer';
import type { TrainConfig } from './config';
import { appendEval, appendTrainStep, dropAfter, evalMetric, trainStepMetric, type EvalMetric, type TrainStepMetric } from './metrics';
import { DataOrder, START_POSITION, checkPosition, type PackedRows, type TrainData } from './packing';
import { learningRate, scheduleOf } from './schedule';
import type { GradientSource, Trainer } from './trainer';

export type { GradientContext, GradientResult, GradientSource, StepInput, Trainer } from './trainer';

export interface EvalContext {
  step: number;
  params: ReadonlyMap<string, Float32Array>;
  rows: PackedRows;
  signal?: AbortSignal;
}

/** Mean loss (nats per target token) over all the held-out rows, and the tokens it covered. */
export type Evaluator = (ctx: EvalContext) => Promise<{ loss: number; tokens: number }>;

/** An Evaluator from a batch loss function: all rows, `batch` at a time, token-weighted mean. */
export function meanLossEvaluator(
  lossOf: (batch: Int32Array[], params: ReadonlyMap<string, Float32Array>, signal?: AbortSignal) => Promise<number>,
  batch: number,
): Evaluator {
  return async ({ rows, params, signal }) => {
    let sum = 0;
    for (let i = 0; i < rows.count; i += batch) {
      if (signal?.aborted) throw new CancelledError();
      const b: Int32Array[] = [];
      for (let j = i; j < Math.min(rows.count, i + batch); j++) b.push(rows.row(j));
      sum += (await lossOf(b, params, signal)) * b.length;
    }
    return { loss: sum / rows.count, tokens: rows.targetTokens };
  };
}

export type TrainEvent =
  | { type: 'train_start'; step: number; steps: number; resumed: boolean; train_rows: number; eval_rows: number }
  | ({ type: 'train_step'; steps: number } & TrainStepMetric)
  | ({ type: 'train_eval' } & EvalMetric)
  | { type: 'checkpoint'; step: number; dir: string };

export interface TrainLoopOptions {
  runDir: string;
  config: TrainConfig;
  /** The adapter a fresh run starts from (normally RUN_DIR/adapter-init); it fixes the layout. */
  adapter: readonly AdapterMatrix[];
  adapterConfig: AdapterConfigInput;
  data: TrainData;
  /** Gradients for a HostTrainer; or the trainer itself. */
  gradients?: GradientSource;
  trainer?: Trainer;
  evaluate?: Evaluator;
  /** Continue from the latest checkpoint when there is one (default true); false refuses a run that has one. */
  resume?: boolean;
  /** Keep only the newest N checkpoints (default: all). */
  keepCheckpoints?: number;
  signal?: AbortSignal;
  onEvent?: (e: TrainEvent) => void;
}

export interface TrainResult {
  /** The step reached (= config.steps). */
  step: number;
  /** The checkpoint step the run continued from, or null for a fresh start. */
  resumedFrom: number | null;
  params: ParamMap;
  lastLoss: number | null;
  lastEval: EvalMetric | null;
  tokensSeen: number;
}

export async function runTraining(o: TrainLoopOptions): Promise<TrainResult> {
  const { runDir, config, data, signal } = o;
  const layout: AdapterLayoutEntry[] = layoutOf(o.adapter);
  const emit = (e: TrainEvent) => o.onEvent?.(e);
  if (data.train.seqLen !== config.seqLen) throw new Error(`train rows have seq_len ${data.train.seqLen}, the config ${config.seqLen}`);
  if (config.evalEvery > 0 && o.evaluate && !data.eval) {
    throw new UserError('--eval-every needs held-out data: set --eval-fraction above 0 or give --eval-data');
  }

  if (!o.trainer === !o.gradients) throw new Error('runTraining: give gradients or a trainer');
  const trainer = o.trainer ?? new HostTrainer(o.gradients!, adamwOptionsOf(config));

  // Start or resume.
  let params = paramsFromAdapter(o.adapter);
  let state: AdamWState | null = null;
  let loop: LoopState = { step: 0, data: { ...START_POSITION }, tokensSeen: 0, rng: null, config };
  let resumedFrom: number | null = null;
  const latest = await findLatestCheckpoint(runDir);
  if (latest) {
    if (o.resume === false) {
      throw new UserError(`${runDir} already has training checkpoints (latest step ${latest.step}): resume it, or start a new run`);
    }
    const ck = await loadCheckpoint(latest.dir, layout);
    checkResumeConfig(ck.loop.config, config);
    checkPosition(ck.loop.data, data.train.count);
    params = ck.params;
    state = ck.optimizer;
    loop = { ...ck.loop, config };
    resumedFrom = latest.step;
  }
  await trainer.load(params, state);
  // Steps logged after the checkpoint are redone now: their old records go first.
  const resumedEvalLogged = resumedFrom === null ? false : (await dropAfter(runDir, resumedFrom)).evalAtStep;
  const order = new DataOrder(data.train.count, config.seed);
  const schedule = scheduleOf(config);
  emit({ type: 'train_start', step: loop.step, steps: config.steps, resumed: resumedFrom !== null, train_rows: data.train.count, eval_rows: data.eval?.count ?? 0 });

  let savedStep = resumedFrom ?? -1;
  let lastLoss: number | null = null;
  let lastEval: EvalMetric | null = null;
  // The current step's parameters on the host, fetched once for its evaluation and checkpoint
  // (a device trainer downloads them).
  let fetched: { step: number; params: ParamMap } | null = null;
  const current = async () => {
    if (fetched?.step !== loop.step) fetched = { step: loop.step, params: await trainer.parameters() };
    return fetched.params;
  };
  const checkpoint = async () => {
    if (savedStep === loop.step) return;
    const params = await current();
    const dir = await saveCheckpoint(runDir, { layout, adapterConfig: o.adapterConfig, params, optimizer: await trainer.optimizerState(), loop }, { keep: o.keepCheckpoints });
    await writeRunAdapter(runDir, layout, params, o.adapterConfig);
    savedStep = loop.step;
    emit({ type: 'checkpoint', step: loop.step, dir });
  };
  const evaluate = async () => {
    if (!o.evaluate || !data.eval || config.evalEvery === 0) return;
    const r = await o.evaluate({ step: loop.step, params: await current(), rows: data.eval, signal });
    lastEval = evalMetric({ step: loop.step, loss: r.loss, tokens: r.tokens, seqLen: config.seqLen });
    await appendEval(runDir, lastEval);
    emit({ type: 'train_eval', ...lastEval });
  };
  const cancelled = async (): Promise<never> => {
    if (loop.step > 0) await checkpoint();
    throw new CancelledError();
  };

  const isEvalStep = (s: number) => config.evalEvery > 0 && (s % config.evalEvery === 0 || s === config.steps);
  try {
    if (resumedFrom === null) await evaluate();
    // Stopped during the evaluation of the checkpointed step: it is recorded now, once.
    else if (isEvalStep(resumedFrom) && !resumedEvalLogged) await evaluate();
  } catch (e) {
    if (signal?.aborted) await cancelled();
    throw e;
  }

  const rowsPerStep = config.batch * config.accum;
  const tokensPerStep = rowsPerStep * config.seqLen;

  while (loop.step < config.steps) {
    if (signal?.aborted) await cancelled();
    const step = loop.step + 1;
    const lr = learningRate(step, schedule);
    // The data position moves on only once the step has completed.
    let pos = loop.data;
    let result;
    try {
      result = await trainer.step(step, {
        accum: config.accum,
        maxGradNorm: config.maxGradNorm,
        batch: () => {
          const taken = order.take(pos, config.batch);
          pos = taken.next;
          return taken.rows.map((r) => data.train.row(r));
        },
        lr,
        signal,
      });
    } catch (e) {
      if (signal?.aborted && !(e instanceof UserError)) await cancelled();
      throw e;
    }
    const { loss, gradNorm: norm, seconds } = result;
    loop = { ...loop, step, data: pos, tokensSeen: loop.tokensSeen + tokensPerStep };
    lastLoss = loss;

    const metric = trainStepMetric({ step, loss, lr, gradNorm: norm, tokensPerS: seconds > 0 ? tokensPerStep / seconds : 0 });
    await appendTrainStep(runDir, metric);
    emit({ type: 'train_step', steps: config.steps, ...metric });
    try {
      const last = step === config.steps;
      if (config.evalEvery > 0 && (step % config.evalEvery === 0 || last)) await evaluate();
      if ((config.checkpointEvery > 0 && step % config.checkpointEvery === 0) || last) await checkpoint();
    } catch (e) {
      if (signal?.aborted && !(e instanceof UserError)) await cancelled();
      throw e;
    }
  }
  // A finished run resumed again: nothing to do but make sure adapter/ is the final one.
  const final = await trainer.parameters();
  if (resumedFrom === config.steps) await writeRunAdapter(runDir, layout, final, o.adapterConfig);
  return { step: loop.step, resumedFrom, params: final, lastLoss, lastEval, tokensSeen: loop.tokensSeen };
}

/** The AdamW settings of a training config. */
export function adamwOptionsOf(config: TrainConfig): AdamWOptions {
  return { beta1: config.beta1, beta2: config.beta2, eps: config.eps, weightDecay: config.weightDecay, noDecay: config.noDecay };
}
