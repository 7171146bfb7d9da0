// The train job (`loftq train`): fine-tunes a finished run's LoRA adapter on the run's exact
// quantized backbone Q. Fresh runs start from RUN_DIR/adapter-init; a run with checkpoints
// resumes from the latest one (the loop refuses a changed configuration, naming the flag).
// Held-out perplexity is Q + the current adapter on the eval rows. The loop appends the
// metrics, writes the checkpoints and RUN_DIR/adapter/; this job records the training's
// status in run.json under `training`, leaving the quantize record as it was.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CancelledError, UserError } from '../errors';
import { readModelConfig } from '../io/hf-config';
import { attachAdapter, loadQuantizedWeights } from '../model/weights';
import { onAbandon, removeTemporariesSync, writeJsonSync } from './abandon';
import { currentProcess } from '../runs/interrupted';
import type { TrainingRecord } from '../runs/records';
import { readRunRecord, RUN_FILES, writeRunRecord } from '../runs/run-dir';
import { openTextDataset, readTokens } from '../text/datasets';
import { checkTokenizerMatchesModel, loadTokenizer, type TextTokenizer } from '../text/tokenizer';
import { readPeftAdapter } from '../adapter/peft';
import { resolveTrainConfig, TRAIN_DEFAULTS, type DataIdentity, type TrainConfig } from '../train/config';
import { LoraGradientSource } from '../train/lora-gradient-source';
import { DeviceTrainer } from '../train/device-trainer';
import { deviceRecord, openModelDevice, type DeviceChoice } from '../tensor/devices';
import type { ComputePrecision } from '../tensor/nn';
import { prepareTrainData, tokenFingerprint } from '../train/packing';
import { adamwOptionsOf, meanLossEvaluator, runTraining, type Evaluator } from '../train/train-loop';
import type { EventSink } from './events';

export type TrainSettings = Partial<Omit<TrainConfig, 'data' | 'evalData' | 'noDecay'>> & { noDecay?: string[] };

export interface TrainOptions extends TrainSettings {
  run: string;
  data: string;
  /** The text field of .jsonl / .parquet data (default "text"). */
  field?: string;
  /** A separate evaluation dataset (instead of holding out --eval-fraction of --data). */
  evalData?: string;
  /** Keep only the newest N checkpoints (default: all). */
  keepCheckpoints?: number;
  /** Where the gradients are computed (auto: the GPU when one answers). Not part of the resume identity. */
  device?: DeviceChoice;
  /** On a GPU: bf16 products with float32 accumulation (default where the GPU has bf16), or float32 throughout. */
  precision?: ComputePrecision;
  signal?: AbortSignal;
  onEvent?: EventSink;
}

export interface TrainJobResult {
  run: string;
  status: 'done';
  step: number;
  steps: number;
  resumed_from: number | null;
  last_loss: number | null;
  last_eval_ppl: number | null;
  tokens_seen: number;
  adapter: string;
  config: TrainConfig;
}

async function readData(path: string, field: string | undefined, tokenizer: TextTokenizer, signal?: AbortSignal): Promise<{ ids: Int32Array; identity: DataIdentity }> {
  const abs = resolve(path);
  const ids = await readTokens(openTextDataset(abs, { field }), tokenizer, { separator: 'eos', signal });
  return { ids, identity: { path: abs, tokens: ids.length, sha256: tokenFingerprint(ids) } };
}

export async function runTrain(o: TrainOptions): Promise<TrainJobResult> {
  const runDir = resolve(o.run);
  const record = await readRunRecord(runDir);
  if (record.status !== 'done') throw new UserError(`${runDir}: the run is ${record.status}; only a finished quantize run (status done) can be trained`);
  const initDir = join(runDir, RUN_FILES.adapterInit);
  if (!existsSync(join(initDir, 'adapter_config.json'))) {
    throw new UserError(`${runDir} has no adapter to train (no ${RUN_FILES.adapterInit}/adapter_config.json): quantize with a LoRA rank first`);
  }
  const backboneDir = join(runDir, RUN_FILES.backbone);
  const modelConfig = await readModelConfig(backboneDir);
  const { run: _run, data: _data, field, evalData: evalPath, keepCheckpoints, device: deviceChoice, precision: precisionChoice, signal, onEvent, ...settings } = o;
  const tokenizer = await loadTokenizer(backboneDir, { signal });
  let train: Awaited<ReturnType<typeof readData>>;
  let held: typeof train | null;
  try {
    checkTokenizerMatchesModel(tokenizer, modelConfig.vocabSize);
    train = await readData(o.data, field, tokenizer, signal);
    held = evalPath ? await readData(evalPath, field, tokenizer, signal) : null;
  } finally {
    tokenizer.dispose();
  }
  const config = resolveTrainConfig({
    ...settings,
    // As eval's window: the model's positions, and the length its tokenizer says it was made for.
    seqLen: settings.seqLen ?? Math.min(TRAIN_DEFAULTS.seqLen, modelConfig.maxPositionEmbeddings, tokenizer.modelMaxLength ?? Infinity),
    // The default warm-up never exceeds a short run's length.
    warmup: settings.warmup ?? Math.min(TRAIN_DEFAULTS.warmup, settings.steps ?? TRAIN_DEFAULTS.steps),
    data: train.identity,
    evalData: held?.identity ?? null,
  });
  if (config.seqLen > modelConfig.maxPositionEmbeddings) {
    throw new UserError(`--seq-len ${config.seqLen} exceeds the model's max_position_embeddings ${modelConfig.maxPositionEmbeddings}`);
  }
  const data = prepareTrainData({ tokens: train.ids, seqLen: config.seqLen, evalFraction: config.evalFraction, evalTokens: held?.ids ?? null });
  const adapter = await readPeftAdapter(initDir);
  if (signal?.aborted) throw new CancelledError();

  const weights = await attachAdapter(await loadQuantizedWeights(runDir), initDir);
  const { opened, nn, where } = await openModelDevice(deviceChoice ?? 'auto', precisionChoice);
  // On a GPU the parameters and AdamW live there (DeviceTrainer); on the CPU in host memory.
  let engine: { trainer: DeviceTrainer } | { gradients: LoraGradientSource };
  let evaluate: Evaluator;
  try {
    if (nn) {
      const trainer = new DeviceTrainer(weights, nn, where, adamwOptionsOf(config));
      engine = { trainer };
      // The trainer evaluates its own current parameters (those the loop passes are their copy).
      evaluate = meanLossEvaluator((batch, _params, s) => trainer.meanLoss(batch, s), config.batch);
    } else {
      const gradients = new LoraGradientSource(weights);
      engine = { gradients };
      evaluate = meanLossEvaluator((batch, params, s) => gradients.meanLoss(batch, params, s), config.batch);
    }
  } catch (e) {
    await opened.device.dispose();
    throw e;
  }
  const training: TrainingRecord = {
    status: 'running',
    step: 0,
    steps: config.steps,
    config: { ...config },
    started: new Date().toISOString(),
    resumed_from: null,
    process: currentProcess(),
    device: { ...deviceRecord(opened), where },
  };
  // A second Ctrl-C exits at once: the training is still recorded cancelled, its temporaries removed.
  const forget = onAbandon(() => {
    const path = join(runDir, RUN_FILES.run);
    const current = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeJsonSync(path, { ...current, training: { ...training, status: 'cancelled', finished: new Date().toISOString() } });
    removeTemporariesSync(runDir);
  });
  const saveTraining = async () => {
    const current = await readRunRecord(runDir);
    await writeRunRecord(runDir, { ...current, training: { ...training } });
  };
  await saveTraining();
  try {
    const r = await runTraining({
      runDir,
      config,
      adapter: adapter.matrices,
      adapterConfig: adapter.config,
      data,
      ...engine,
      evaluate,
      keepCheckpoints,
      signal,
      onEvent: (e) => {
        switch (e.type) {
          case 'train_start':
            training.step = e.step;
            training.resumed_from = e.resumed ? e.step : null;
            // A resumed training keeps the best held-out perplexity of its earlier part.
            if (e.resumed && typeof record.training?.best_eval_ppl === 'number') training.best_eval_ppl = record.training.best_eval_ppl;
            break;
          case 'train_step':
            training.last_loss = e.loss;
            {
              const memory = 'trainer' in engine ? engine.trainer.memoryUsage() : null;
              onEvent?.({
                type: 'train',
                step: e.step,
                steps: e.steps,
                loss: e.loss,
                lr: e.lr,
                grad_norm: e.grad_norm,
                tokens_per_s: e.tokens_per_s,
                where,
                ...(memory ? { device_memory: { in_use: memory.inUse, peak: memory.peak } } : {}),
              });
            }
            break;
          case 'train_eval':
            training.last_eval_ppl = e.eval_ppl;
            training.best_eval_ppl = Math.min(training.best_eval_ppl ?? Infinity, e.eval_ppl);
            onEvent?.({ type: 'train', step: e.step, steps: config.steps, eval_ppl: e.eval_ppl });
            break;
          case 'checkpoint':
            training.step = e.step;
            break;
        }
      },
    });
    training.status = 'done';
    training.step = r.step;
    training.finished = new Date().toISOString();
    await saveTraining();
    return {
      run: runDir,
      status: 'done',
      step: r.step,
      steps: config.steps,
      resumed_from: r.resumedFrom,
      last_loss: r.lastLoss,
      last_eval_ppl: r.lastEval?.eval_ppl ?? null,
      tokens_seen: r.tokensSeen,
      adapter: join(runDir, RUN_FILES.adapter),
      config,
    };
  } catch (e) {
    training.status = e instanceof CancelledError ? 'cancelled' : 'failed';
    training.finished = new Date().toISOString();
    if (!(e instanceof CancelledError)) training.error = e instanceof Error ? e.message : String(e);
    await saveTraining().catch(() => undefined);
    throw e;
  } finally {
    forget();
    await ('trainer' in engine ? engine.trainer : engine.gradients).dispose();
    await opened.device.dispose();
  }
}
