// Training's lines in RUN_DIR/metrics.jsonl (DESIGN.md's contract), appended with the run
// directory's appendMetric:
//   steps        {"step","loss","lr","grad_norm","tokens_per_s","time"}
//   evaluations  {"step","split":"eval","eval_ppl","tokens","weights":"q+lora", "eval_loss", "time"}
// `time` is the wall-clock time of the record (ISO 8601), as the eval job writes it.
// A run resumed from a checkpoint older than its last logged step logs those steps again;
// readers keep the last record per step (lastPerStep).
import { appendMetric } from '../runs/run-dir';

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

export function evalMetric(m: { step: number; loss: number; tokens: number; time?: Date }): EvalMetric {
  return {
    step: m.step,
    split: 'eval',
    eval_ppl: Math.exp(m.loss),
    eval_loss: m.loss,
    tokens: m.tokens,
    weights: 'q+lora',
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
