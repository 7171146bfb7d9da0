// The records of a run directory (run.json, layers.json) as types, free of Node imports so
// that the dashboard can use them through api/contract.ts.
export const RUN_FORMAT = 'loftq-run/1';

export type RunStatus = 'running' | 'done' | 'failed' | 'cancelled';

export interface LayerRecord {
  name: string;
  shape: [number, number];
  bits: number;
  method: string;
  err_q: number;
  err_init: number;
  /** The measured ‖W − Q − s·B·A‖/‖W‖ of every alternating step run. */
  step_errors: number[];
  /** The step returned (1-based; the lowest measured error). Absent in runs made before it was kept. */
  best_step?: number;
  /** The loop ended before --iters steps because the error stopped falling. */
  stopped_early?: boolean;
  /** Some step's error was above the step before it. */
  error_rose?: boolean;
  /** Leading singular values of W − Q: the first r held by the adapter (or, for QLoRA, what it could hold), up to 16 more left over (runs before this record r only). */
  residual_top_sv: number[];
  seconds: number;
}

export interface RunRecord {
  format: typeof RUN_FORMAT;
  kind: 'quantize';
  status: RunStatus;
  config: Record<string, unknown>;
  model: Record<string, unknown>;
  /** The device the run was computed on: kind, name, memory, why it was chosen, backend facts. */
  device?: Record<string, unknown>;
  /** The process computing it while `running` (pid, host): a reader that finds it gone marks the run interrupted. */
  process?: { pid: number; host: string };
  created: string;
  finished?: string;
  timings: Record<string, number>;
  summary?: Record<string, number>;
  error?: string;
  /** The latest `loftq train` on this run (absent until one starts); the quantize record above is untouched by it. */
  training?: TrainingRecord;
}

export interface TrainingRecord {
  status: RunStatus;
  /** The last completed (and checkpointed, when not running) optimizer step, of `steps`. */
  step: number;
  steps: number;
  /** The resolved training configuration (TrainConfig). */
  config: Record<string, unknown>;
  started: string;
  finished?: string;
  resumed_from: number | null;
  /** The process training it while `running`. */
  process?: { pid: number; host: string };
  last_loss?: number | null;
  last_eval_ppl?: number | null;
  /** The lowest held-out perplexity of the training so far (resumes included). */
  best_eval_ppl?: number | null;
  /** Where the gradients are computed and why (as run.json's device record), with `where` for display. */
  device?: Record<string, unknown>;
  error?: string;
}
