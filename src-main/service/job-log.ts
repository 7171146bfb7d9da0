// The service's job list kept in the runs folder (.jobs.json), so that a restarted engine still
// shows what it was doing: a job that was queued or running when the engine stopped (Ctrl-C, a
// crash, a kill) is listed as interrupted, never as running. Only state changes are written
// (not progress), the newest MAX_KEPT jobs, one write at a time.
import { join } from 'node:path';
import type { JobInfo, JobKind, JobState } from '../api/contract';
import { writeJsonAtomic } from '../engine/io/atomic-write';
import { readJsonObject } from '../engine/io/json-file';

export const JOB_LOG = '.jobs.json';
const MAX_KEPT = 100;
const KINDS: readonly JobKind[] = ['quantize', 'export', 'eval', 'train', 'profile'];
const STATES: readonly JobState[] = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'];
/** A result bigger than this (as JSON) is not kept: the run folder has it. */
const MAX_RESULT_CHARS = 16_384;

/** What a job that was live when the engine stopped says about itself. */
export function interruptedLabel(was: JobState): string {
  return `interrupted: the engine stopped while this job was ${was}`;
}

function isJobInfo(j: unknown): j is JobInfo {
  const o = j as Partial<JobInfo> | null;
  return (
    typeof o === 'object' && o !== null && typeof o.id === 'string' && o.id.length < 100 && KINDS.includes(o.kind as JobKind) && STATES.includes(o.state as JobState) &&
    typeof o.target === 'string' && typeof o.label === 'string' && typeof o.started === 'string' && typeof o.progress === 'number'
  );
}

/** A job as it is kept: without a large result. */
function kept(j: JobInfo): JobInfo {
  const out: JobInfo = { ...j };
  if (out.result !== undefined && JSON.stringify(out.result).length > MAX_RESULT_CHARS) delete out.result;
  return out;
}

export class JobLog {
  readonly file: string;
  private chain: Promise<void> = Promise.resolve();

  constructor(runsDir: string) {
    this.file = join(runsDir, JOB_LOG);
  }

  /** The jobs of the last engine, live ones marked interrupted (oldest first). */
  async load(now = new Date()): Promise<JobInfo[]> {
    let raw: Record<string, unknown> | null;
    try {
      raw = await readJsonObject(this.file, { optional: true, maxBytes: 8 << 20 });
    } catch {
      return []; // damaged: the list starts afresh
    }
    const jobs = Array.isArray(raw?.jobs) ? raw.jobs.filter(isJobInfo) : [];
    return jobs.map((j) =>
      j.state === 'queued' || j.state === 'running'
        ? { ...j, state: 'interrupted' as const, label: interruptedLabel(j.state), finished: j.finished ?? now.toISOString() }
        : j,
    );
  }

  /** Writes the list (the newest MAX_KEPT), after any write still under way. */
  save(jobs: readonly JobInfo[]): Promise<void> {
    const list = jobs.slice(-MAX_KEPT).map(kept);
    this.chain = this.chain.then(() => writeJsonAtomic(this.file, { format: 'loftq-jobs/1', jobs: list })).catch(() => undefined);
    return this.chain;
  }

  /** Resolves when every write asked for so far is done. */
  flushed(): Promise<void> {
    return this.chain;
  }
}
