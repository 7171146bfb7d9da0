// The eval job: perplexity of a model folder, or of a run in three weight sources (full
// precision, Q alone, Q + adapter) evaluated one after another so that only one set of
// weights is in memory at a time; a run's results are appended to its metrics.jsonl.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors';
import { readModelConfig } from '../io/hf-config';
import { checkModelTensors } from '../io/model-check';
import { openModelWeights } from '../io/model-weights';
import { perplexity, checkWindow, type PerplexityResult } from '../model/perplexity';
import { Transformer } from '../model/transformer';
import { DeviceModel } from '../model/device-model';
import type { LanguageModel } from '../model/language-model';
import { deviceRecord, openModelDevice, type DeviceChoice } from '../tensor/devices';
import type { ComputePrecision } from '../tensor/nn';
import { attachAdapter, loadModelWeights, loadQuantizedWeights, type WeightSet } from '../model/weights';
import { appendMetric, readRunRecord, RUN_FILES } from '../runs/run-dir';
import { openTextDataset, readTokens } from '../text/datasets';
import { checkTokenizerMatchesModel, loadTokenizer } from '../text/tokenizer';
import type { EventSink } from './events';

export type WeightsKind = 'fp' | 'q' | 'q+lora';

export interface EvalOptions {
  target: string;
  data: string;
  field?: string;
  seqLen?: number;
  stride?: number;
  maxTokens?: number;
  /** Where the model runs (auto: the GPU when one answers). */
  device?: DeviceChoice;
  /** On a GPU: bf16 products with float32 accumulation (default where the GPU has bf16), or float32 throughout. */
  precision?: ComputePrecision;
  /** Windows run together (default: 1 on the CPU, about 8192 tokens' worth on a GPU). */
  batch?: number;
  signal?: AbortSignal;
  onEvent?: EventSink;
}

export interface EvalEntry extends PerplexityResult {
  weights: WeightsKind;
  /** Where it ran: "CPU", "NVIDIA H200 (bf16)". */
  where: string;
  /** Peak device memory of this pass (GPU), bytes. */
  device_memory_peak?: number;
}

export interface EvalResult {
  target: string;
  kind: 'model' | 'run';
  data: string;
  seq_len: number;
  stride: number;
  batch: number;
  /** The device and why it was chosen (as run.json records it). */
  device: Record<string, unknown>;
  results: EvalEntry[];
  /** Weight sources that could not be evaluated, with why (e.g. the original model moved). */
  skipped: Array<{ weights: WeightsKind; reason: string }>;
}

const DEFAULT_SEQ_LEN = 1024;
/** A GPU's default batch: windows adding up to about this many tokens per pass. */
const GPU_BATCH_TOKENS = 8192;

export async function runEval(o: EvalOptions): Promise<EvalResult> {
  const target = resolve(o.target);
  const isRun = existsSync(join(target, RUN_FILES.run));
  if (!isRun && !existsSync(join(target, 'config.json'))) {
    throw new UserError(`${target} is neither a model folder (config.json) nor a run directory (run.json)`);
  }
  const record = isRun ? await readRunRecord(target) : null;
  if (record && record.status !== 'done') throw new UserError(`${target}: the run is ${record.status}, only a finished run can be evaluated`);
  // A run's backbone has the model's config and tokenizer, so the original is needed only for fp.
  const modelDir = isRun ? join(target, RUN_FILES.backbone) : target;
  const config = await readModelConfig(modelDir);
  // A model folder's tensors are checked against its config before anything else (a run's, as they load).
  if (!isRun) checkModelTensors(await openModelWeights(modelDir), config);
  const tokenizer = await loadTokenizer(modelDir, { signal: o.signal });
  // The window the model is meant for: its positions, and the tokenizer's model_max_length
  // (the length it was trained on, where a config allows more positions than were trained).
  const seqLen = o.seqLen ?? Math.min(DEFAULT_SEQ_LEN, config.maxPositionEmbeddings, tokenizer.modelMaxLength ?? Infinity);
  const stride = o.stride ?? Math.max(1, Math.floor(seqLen / 2));
  checkWindow(seqLen, stride, config.maxPositionEmbeddings);

  let ids: Int32Array;
  try {
    checkTokenizerMatchesModel(tokenizer, config.vocabSize);
    ids = await readTokens(openTextDataset(resolve(o.data), { field: o.field }), tokenizer, { maxTokens: o.maxTokens, separator: 'eos', signal: o.signal });
  } finally {
    tokenizer.dispose();
  }

  const sources: Array<{ weights: WeightsKind; load: () => Promise<WeightSet> }> = [];
  const skipped: EvalResult['skipped'] = [];
  if (!record) sources.push({ weights: 'fp', load: () => loadModelWeights(modelDir) });
  else {
    const original = String(record.model.path ?? '');
    if (original && existsSync(join(original, 'config.json'))) sources.push({ weights: 'fp', load: () => loadModelWeights(original) });
    else skipped.push({ weights: 'fp', reason: `the original model ${original} is not there any more` });
    // Q is loaded once and shared by the q and q+lora passes (the adapter is a separate branch).
    let q: Promise<WeightSet> | null = null;
    const loadQ = () => (q ??= loadQuantizedWeights(target));
    sources.push({ weights: 'q', load: loadQ });
    sources.push({ weights: 'q+lora', load: async () => attachAdapter(await loadQ(), join(target, RUN_FILES.adapter)) });
  }

  if (o.batch !== undefined && !(Number.isInteger(o.batch) && o.batch >= 1)) throw new UserError(`--batch must be a positive integer, got ${o.batch}`);
  const { opened, nn, where } = await openModelDevice(o.device ?? 'auto', o.precision);
  const batch = o.batch ?? (nn ? Math.max(1, Math.floor(GPU_BATCH_TOKENS / seqLen)) : 1);
  const results: EvalEntry[] = [];
  try {
    for (const source of sources) {
      o.onEvent?.({ type: 'eval', weights: source.weights, done_tokens: 0, total_tokens: ids.length - 1, where });
      const weights = await source.load();
      nn?.resetPeak();
      const model: LanguageModel = nn ? DeviceModel.load(weights, nn, where) : new Transformer(weights);
      const started = performance.now();
      try {
        const r = await perplexity(model, ids, {
          seqLen,
          stride,
          batch,
          signal: o.signal,
          onProgress: (done, total) => {
            const memory = model.memoryUsage();
            o.onEvent?.({
              type: 'eval',
              weights: source.weights,
              done_tokens: done,
              total_tokens: total,
              tokens_per_s: done / Math.max(1e-9, (performance.now() - started) / 1000),
              where,
              ...(memory ? { device_memory: { in_use: memory.inUse, peak: memory.peak } } : {}),
            });
          },
        });
        const memory = model.memoryUsage();
        results.push({ weights: source.weights, ...r, where, ...(memory ? { device_memory_peak: memory.peak } : {}) });
        if (record) {
          await appendMetric(target, {
            step: 0,
            split: 'eval',
            eval_ppl: r.ppl,
            tokens: r.tokens,
            weights: source.weights,
            seq_len: seqLen,
            stride,
            data: resolve(o.data),
            seconds: r.seconds,
            where,
            time: new Date().toISOString(),
          });
        }
      } finally {
        await model.dispose();
      }
    }
  } finally {
    await opened.device.dispose();
  }
  return { target, kind: isRun ? 'run' : 'model', data: resolve(o.data), seq_len: seqLen, stride, batch, device: deviceRecord(opened), results, skipped };
}
