// The engine's jobs by name, with their options as plain data and their control (cancel,
// progress) apart: the one way a host runs a job, here on the calling thread or, through
// job-thread.ts, on a thread of its own. Options must stay structured-cloneable.
import type { EvalOptions } from './eval-job';
import { runEval } from './eval-job';
import type { EventSink } from './events';
import { runExport, type ExportOptions } from './export-job';
import { profileIntoCache, type CachedProfileOptions } from './profile-job';
import { runQuantize } from './quantize-job';
import type { QuantizeOptions } from './quantize-options';
import { runTrain, type TrainOptions } from './train-job';

export interface JobControl {
  signal?: AbortSignal;
  onEvent?: EventSink;
}

type Data<T> = Omit<T, 'signal' | 'onEvent'>;

export interface JobOptions {
  quantize: QuantizeOptions;
  export: Data<ExportOptions>;
  eval: Data<EvalOptions>;
  train: Data<TrainOptions>;
  profile: CachedProfileOptions;
}

export type RunnableJob = keyof JobOptions;

export type JobRunner = <K extends RunnableJob>(kind: K, options: JobOptions[K], control: JobControl) => Promise<unknown>;

/** Runs the job on the calling thread. */
export const runJobHere: JobRunner = (kind, options, control) => {
  const o = options as JobOptions[RunnableJob];
  switch (kind) {
    case 'quantize':
      return runQuantize(o as QuantizeOptions, control);
    case 'export':
      return runExport({ ...(o as JobOptions['export']), ...control });
    case 'eval':
      return runEval({ ...(o as JobOptions['eval']), ...control });
    case 'train':
      return runTrain({ ...(o as JobOptions['train']), ...control });
    case 'profile':
      return profileIntoCache(o as CachedProfileOptions, control);
  }
  throw new Error(`unknown job ${String(kind)}`);
};
