// Engine jobs (quantize, export, eval, train): their state from 'job' events, and the live
// progress of quantize jobs (per matrix) and train jobs (per step). Events are applied in
// batches, one per animation frame.
import { create } from 'zustand';
import type { ApiEvent, JobEvent, JobInfo, LayerRecord } from '../../src-main/api/contract';
import { inAppWords } from '../lib/app-words';
import { createBatcher, type Scheduler } from '../lib/raf';
import { api } from './api';

export interface JobProgress {
  /** Matrices in the run (from the start event, or the latest matrix event). */
  total: number;
  /** The matrix being worked on. */
  current: { index: number; name: string; shape: [number, number]; bits: number; step?: number; iters?: number; err?: number } | null;
  /** Finished matrices, in the order the engine finished them. */
  layers: LayerRecord[];
  phase: string | null;
  /** Train jobs: one point per reported step (loss) or evaluation (held-out perplexity). */
  train: TrainPoint[];
}

export interface TrainPoint {
  step: number;
  steps: number;
  loss?: number;
  eval_ppl?: number;
  tokens_per_s?: number;
  /** GPU memory in use (bytes) and where the step ran, when the engine says. */
  gpu_bytes?: number;
  where?: string;
  /** When the point arrived (ms, for the ETA). */
  at: number;
}

interface JobsStore {
  jobs: Record<string, JobInfo>;
  /** Job ids, newest first. */
  order: string[];
  progress: Record<string, JobProgress>;
  /** Finished jobs the user closed in the tray. */
  dismissed: Record<string, true>;
  refresh(): Promise<void>;
  cancel(id: string): Promise<void>;
  dismiss(id: string): void;
}

export const useJobs = create<JobsStore>((set) => ({
  jobs: {},
  order: [],
  progress: {},
  dismissed: {},
  async refresh() {
    const list = await api().listJobs();
    set((s) => {
      const jobs = { ...s.jobs };
      const listed = new Set(list.map((j) => j.id));
      for (const j of list) jobs[j.id] = shown(j);
      // The engine's list is the truth: a job it no longer knows (an engine restarted without
      // its runs folder's job list) cannot still be running.
      for (const [id, j] of Object.entries(jobs)) {
        if (!listed.has(id) && isLive(j)) jobs[id] = { ...j, state: 'interrupted', label: 'interrupted: the engine no longer knows this job (it was restarted)' };
      }
      return { jobs, order: orderOf(jobs) };
    });
  },
  async cancel(id) {
    await api().cancelJob(id);
  },
  dismiss(id) {
    set((s) => ({ dismissed: { ...s.dismissed, [id]: true } }));
  },
}));

/** A job as the app shows it: the engine's error and label in the app's words. */
function shown(job: JobInfo): JobInfo {
  return job.error === undefined ? { ...job, label: inAppWords(job.label) } : { ...job, error: inAppWords(job.error), label: inAppWords(job.label) };
}

function orderOf(jobs: Record<string, JobInfo>): string[] {
  return Object.values(jobs)
    .sort((a, b) => b.started.localeCompare(a.started) || jobNumber(b.id) - jobNumber(a.id))
    .map((j) => j.id);
}

function jobNumber(id: string): number {
  const m = /(\d+)$/.exec(id);
  return m ? Number(m[1]) : 0;
}

export function isLive(job: JobInfo): boolean {
  return job.state === 'queued' || job.state === 'running';
}

function emptyProgress(): JobProgress {
  return { total: 0, current: null, layers: [], phase: null, train: [] };
}

/** Folds one engine event into a job's progress (mutates `p`, a copy owned by the caller). */
function applyJobEvent(p: JobProgress, e: JobEvent): void {
  switch (e.type) {
    case 'start':
      p.total = e.matrices;
      break;
    case 'matrix':
      p.total = e.total;
      p.current = { index: e.index, name: e.name, shape: e.shape, bits: e.bits };
      break;
    case 'step':
      p.total = e.total;
      if (p.current?.index === e.index) p.current = { ...p.current, step: e.step, iters: e.iters, err: e.err };
      break;
    case 'layer':
      p.total = e.total;
      p.layers.push(e.layer);
      break;
    case 'phase':
      p.phase = e.detail ? `${e.phase}: ${e.detail}` : e.phase;
      p.current = null;
      break;
    case 'train':
      p.train.push({ step: e.step, steps: e.steps, loss: e.loss, eval_ppl: e.eval_ppl, tokens_per_s: e.tokens_per_s, gpu_bytes: e.device_memory?.in_use, where: e.where, at: Date.now() });
      break;
    default:
      break;
  }
}

/** Applies a batch of 'job' events in one store update. */
export function applyJobEvents(events: Extract<ApiEvent, { type: 'job' }>[]): void {
  if (events.length === 0) return;
  useJobs.setState((s) => {
    const jobs = { ...s.jobs };
    const progress = { ...s.progress };
    const copied = new Set<string>();
    for (const ev of events) {
      const id = ev.job.id;
      // Keep the newest info (events of a job arrive in order).
      jobs[id] = shown(ev.job);
      if (!ev.event) continue;
      if (!copied.has(id)) {
        const old = progress[id] ?? emptyProgress();
        progress[id] = { ...old, layers: [...old.layers], train: [...old.train] };
        copied.add(id);
      }
      applyJobEvent(progress[id], ev.event);
    }
    return { jobs, progress, order: orderOf(jobs) };
  });
}

/** Records a job a request just started, unless its events got here first (they are newer). */
export function noteJob(job: JobInfo): void {
  if (useJobs.getState().jobs[job.id]) return;
  useJobs.setState((s) => {
    const jobs = { ...s.jobs, [job.id]: shown(job) };
    return { jobs, order: orderOf(jobs) };
  });
}

let batcher = createBatcher(applyJobEvents);

/** Tests swap the frame scheduler for a synchronous one. */
export function setJobScheduler(schedule: Scheduler): void {
  batcher = createBatcher(applyJobEvents, schedule);
}

export function ingestJobEvent(event: Extract<ApiEvent, { type: 'job' }>): void {
  batcher.push(event);
}

export function flushJobEvents(): void {
  batcher.flush();
}
