// What perplexity and the jobs need of a model, whichever backend runs it: the CPU's
// compiled graphs (transformer.ts) or a device's kernels (device-model.ts).
import { UserError } from '../errors';
import type { ModelConfig } from '../io/hf-config';

export interface LanguageModel {
  readonly config: ModelConfig;
  /** Where it runs, for records and progress ("CPU", "NVIDIA H200, bf16"). */
  readonly where: string;
  /**
   * −log p(targets[t] | the sequence up to t) at every position of `batch` sequences of equal
   * length stacked in ids (batch·length tokens); targets are vocabulary ids.
   */
  nll(ids: Int32Array, targets: Int32Array, signal?: AbortSignal, batch?: number): Promise<Float32Array>;
  /** Logits [T, vocab] for every position of one sequence. */
  logits(ids: Int32Array): Promise<Float32Array>;
  /** Device memory in use now and at most so far (GPU), null where not tracked. */
  memoryUsage(): { inUse: number; peak: number } | null;
  dispose(): Promise<void>;
}

/** Checks a batch of token sequences against the model: length, positions, vocabulary. */
export function checkSequences(config: ModelConfig, ids: Int32Array, batch: number): number {
  if (!Number.isInteger(batch) || batch < 1 || ids.length % batch !== 0) throw new UserError(`${ids.length} tokens do not split into ${batch} sequences of equal length`);
  const T = ids.length / batch;
  if (T === 0) throw new UserError('cannot run the model on an empty sequence');
  if (T > config.maxPositionEmbeddings) throw new UserError(`sequence length ${T} exceeds the model's max_position_embeddings ${config.maxPositionEmbeddings}`);
  for (const id of ids) if (id < 0 || id >= config.vocabSize) throw new UserError(`token id ${id} is outside the vocabulary (size ${config.vocabSize})`);
  return T;
}
