// The Fine-tune form (a run's training settings as typed) and the train job it started.
import { create } from 'zustand';
import type { RunRecord, TrainRequest } from '../../src-main/api/contract';
import { errorMessage } from '../transport/types';
import { api } from './api';
import { noteJob } from './jobs';

export interface TrainForm {
  data: string;
  evalData: string;
  steps: string;
  lr: string;
  batch: string;
  seqLen: string;
  warmup: string;
  evalEvery: string;
}

/** `loftq train`'s defaults (engine/train/config.ts), shown as typed values. */
export const DEFAULT_TRAIN_FORM: TrainForm = { data: '', evalData: '', steps: '200', lr: '0.0002', batch: '4', seqLen: '512', warmup: '10', evalEvery: '50' };

/** The demo model's texts, with settings that train it in a minute on a laptop (its context is 128). */
export function demoTrainForm(demo: { train: string; eval: string }): TrainForm {
  return { data: demo.train, evalData: demo.eval, steps: '60', lr: '0.001', batch: '8', seqLen: '128', warmup: '5', evalEvery: '20' };
}

export const TRAIN_FIELD_LABELS: Record<keyof TrainForm, string> = {
  data: 'Training data',
  evalData: 'Held-out data',
  steps: 'Steps',
  lr: 'Learning rate',
  batch: 'Batch',
  seqLen: 'Sequence length',
  warmup: 'Warm-up steps',
  evalEvery: 'Evaluate every',
};

const INTEGER_FIELDS = ['steps', 'batch', 'seqLen', 'warmup', 'evalEvery'] as const;

export interface ParsedTrain {
  request: Omit<TrainRequest, 'run'> | null;
  errors: Partial<Record<keyof TrainForm, string>>;
}

/** The form as a request, or an error per field in the app's words. */
export function parseTrainForm(f: TrainForm): ParsedTrain {
  const errors: ParsedTrain['errors'] = {};
  if (f.data.trim() === '') errors.data = 'choose a .txt, .jsonl or .parquet file';
  const ints: Record<string, number> = {};
  for (const k of INTEGER_FIELDS) {
    const n = /^\s*\d+\s*$/.test(f[k]) ? Number(f[k]) : NaN;
    const min = k === 'warmup' || k === 'evalEvery' ? 0 : 1;
    if (!Number.isSafeInteger(n) || n < min) errors[k] = min === 0 ? 'a whole number ≥ 0' : 'a positive whole number';
    else ints[k] = n;
  }
  if (ints.seqLen !== undefined && ints.seqLen < 2) errors.seqLen = 'at least 2 tokens';
  if (ints.warmup !== undefined && ints.steps !== undefined && ints.warmup > ints.steps) errors.warmup = 'at most the number of steps';
  const lr = Number(f.lr);
  if (f.lr.trim() === '' || !(lr > 0) || !Number.isFinite(lr) || lr > 1) errors.lr = 'a number in (0, 1]';
  if (Object.keys(errors).length > 0) return { request: null, errors };
  return {
    request: {
      data: f.data.trim(),
      ...(f.evalData.trim() ? { evalData: f.evalData.trim() } : {}),
      steps: ints.steps,
      lr,
      batch: ints.batch,
      seqLen: ints.seqLen,
      warmup: ints.warmup,
      evalEvery: ints.evalEvery,
    },
    errors,
  };
}

/** The settings a run's last training used, as the form shows them (to resume with). */
export function formOfTraining(training: NonNullable<RunRecord['training']>): TrainForm {
  const c = training.config as Record<string, unknown>;
  const path = (v: unknown) => (typeof v === 'object' && v !== null && typeof (v as { path?: unknown }).path === 'string' ? (v as { path: string }).path : '');
  const num = (v: unknown, fallback: string) => (typeof v === 'number' ? String(v) : fallback);
  return {
    data: path(c.data),
    evalData: path(c.evalData),
    steps: num(c.steps, DEFAULT_TRAIN_FORM.steps),
    lr: num(c.lr, DEFAULT_TRAIN_FORM.lr),
    batch: num(c.batch, DEFAULT_TRAIN_FORM.batch),
    seqLen: num(c.seqLen, DEFAULT_TRAIN_FORM.seqLen),
    warmup: num(c.warmup, DEFAULT_TRAIN_FORM.warmup),
    evalEvery: num(c.evalEvery, DEFAULT_TRAIN_FORM.evalEvery),
  };
}

/** Fields whose value differs from the run's last training (which resumes only unchanged). */
export function changedFields(form: TrainForm, previous: TrainForm): Array<keyof TrainForm> {
  return (Object.keys(previous) as Array<keyof TrainForm>).filter((k) => {
    const a = form[k].trim();
    const b = previous[k].trim();
    if (k === 'data' || k === 'evalData') return a !== b;
    return Number(a) !== Number(b);
  });
}

interface TrainStore {
  /** The form per run folder (switching runs keeps what was typed for each). */
  forms: Record<string, TrainForm>;
  jobId: string | null;
  submitting: boolean;
  error: string | null;
  update(run: string, base: TrainForm, patch: Partial<TrainForm>): void;
  start(request: TrainRequest): Promise<void>;
}

export const useTrain = create<TrainStore>((set) => ({
  forms: {},
  jobId: null,
  submitting: false,
  error: null,
  update(run, base, patch) {
    set((s) => ({ forms: { ...s.forms, [run]: { ...(s.forms[run] ?? base), ...patch } } }));
  },
  async start(request) {
    set({ submitting: true, error: null });
    try {
      const job = await api().startTrain(request);
      noteJob(job);
      set({ submitting: false, jobId: job.id });
    } catch (e) {
      set({ submitting: false, error: errorMessage(e) });
    }
  },
}));
