// Training's lines in RUN_DIR/metrics.jsonl (DESIGN.md's contract), appended with the run
// directory's appendMetric:
//   steps        {"step","loss","lr","grad_norm","tokens_per_s","time"}
//   evaluations  {"step","split":"eval","eval_ppl","tokens","weights":"q+lora", "eval_loss", "time"}
// `time` is the wall-clock time of the record (ISO 8601), as the eval job writes it.
// A run resumed from a checkpoint older than its last logged step first drops training's
// records past the checkpoint (dropAfter), so no step is ever logged twice.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeBytesAtomic } from '../io/atomic-write';
import { readTextFile } from '../io/json-file';
import { appendMetric, RUN_FILES } from '../runs/run-dir';

/** Largest metrics.jsonl rewritten on resume. */
const MAX_METRICS_BYTES = 256 * 2 ** 20;

/** A line training wrote (a step, or a held-out evaluation), not one of `loftq eval`'s. */
function isTrainingRecord(r: Record<string, unknown>): boolean {
  if ('loss' in r && 'lr' in r) return true;
  return r.split === 'eval' && r.weights === 'q+lora' && !('data' in r);
}

/**
 * Drops training's records after `step` from metrics.jsonl (atomically), keeping everything
 * else; says whether an evaluation of `step` itself is there.
 */
export async function dropAfter(runDir: string, step: number): Promise<{ evalAtStep: boolean }> {
  const path = join(runDir, RUN_FILES.metrics);
  if (!existsSync(path)) return { evalAtStep: false };
  const lines = (await readTextFile(path, MAX_METRICS_BYTES)).split('\n').filter((l) => l.trim() !== '');
  let evalAtStep = false;
  let dropped = 0;
  const kept = lines.filter((line) => {
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      dropped++;
      return false; // a line cut by a crash mid-append
    }
    if (!isTrainingRecord(r)) return true;
    const s = Number(r.step);
    if (s > step) {
      dropped++;
      return false;
    }
    if (s === step && r.split === 'eval') evalAtStep = true;
    return true;
  });
  if (dropped > 0) await writeBytesAtomic(path, kept.map((l) => l + '\n').join(''));
  return { evalAtStep };
}

export interface TrainStepMetric {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  time: string;
}

export interface EvalMetric {
  step: number;
  split: 'eval';
  eval_ppl: number;
  eval_loss: number;
  tokens: number;
  weights: 'q+lora';
  /**
   * How it was measured: 'rows' is exp(mean loss) over the held-out rows of seq_len tokens,
   * each scored on its own (no overlap), not `loftq eval`'s sliding window, so it reads higher.
   */
  protocol: 'rows';
  seq_len: number;
  time: string;
}

export function trainStepMetric(m: { step: number; loss: number; lr: number; gradNorm: number; tokensPerS: number; time?: Date }): TrainStepMetric {
  return {
    step: m.step,
    loss: m.loss,
    lr: m.lr,
    grad_norm: m.gradNorm,
    tokens_per_s: m.tokensPerS,
    time: (m.time ?? new Date()).toISOString(),
  };
}

export function evalMetric(m: { step: number; loss: number; tokens: number; seqLen: number; time?: Date }): EvalMetric {
  return {
    step: m.step,
    split: 'eval',
    eval_ppl: Math.exp(m.loss),
    eval_loss: m.loss,
    tokens: m.tokens,
    weights: 'q+lora',
    protocol: 'rows',
    seq_len: m.seqLen,
    time: (m.time ?? new Date()).toISOString(),
  };
}

export async function appendTrainStep(runDir: string, m: TrainStepMetric): Promise<void> {
  await appendMetric(runDir, { ...m });
}

export async function appendEval(runDir: string, m: EvalMetric): Promise<void> {
  await appendMetric(runDir, { ...m });
}

/** Keeps, for each key (kind of record and step), the last record: a resumed run's view. */
export function lastPerStep<T extends { step: number }>(records: readonly T[], kindOf: (r: T) => string = (r) => ('loss' in r ? 'train' : 'eval:' + String((r as { weights?: unknown }).weights))): T[] {
  const last = new Map<string, number>();
  records.forEach((r, i) => last.set(`${kindOf(r)}@${r.step}`, i));
  return records.filter((r, i) => last.get(`${kindOf(r)}@${r.step}`) === i);
}
