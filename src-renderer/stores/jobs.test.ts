import { beforeEach, describe, expect, it } from 'vitest';
import type { ApiEvent, JobEvent } from '../../src-main/api/contract';
import { job } from '../test/fake-api';
import { flushJobEvents, ingestJobEvent, setJobScheduler, useJobs } from './jobs';

type JobApiEvent = Extract<ApiEvent, { type: 'job' }>;

function ev(event: JobEvent, progress: number): JobApiEvent {
  return { type: 'job', job: job({ progress, label: `p ${progress}` }), event };
}

describe('job events', () => {
  let frames: (() => void)[];
  beforeEach(() => {
    frames = [];
    setJobScheduler((run) => frames.push(run));
    useJobs.setState({ jobs: {}, order: [], progress: {}, dismissed: {} });
  });

  it('applies a burst of 600 matrices in one store update per frame', () => {
    let updates = 0;
    const off = useJobs.subscribe(() => updates++);
    const total = 600;
    ingestJobEvent(ev({ type: 'start', job: 'quantize', run: '/runs/x', matrices: total, total_params: total * 4 }, 0));
    for (let i = 0; i < total; i++) {
      const name = `model.layers.${Math.floor(i / 7)}.mlp.down_proj`;
      ingestJobEvent(ev({ type: 'matrix', index: i, total, name, shape: [2, 2], bits: 2 }, i / total));
      ingestJobEvent(ev({ type: 'step', index: i, total, name, step: 1, iters: 5, err: 0.5 }, i / total));
      const layer = { name, shape: [2, 2] as [number, number], bits: 2, method: 'loftq', err_q: 0.6, err_init: 0.4, step_errors: [0.5, 0.4], residual_top_sv: [1], seconds: 0.01 };
      ingestJobEvent(ev({ type: 'layer', index: i, total, layer, done_params: (i + 1) * 4, total_params: total * 4 }, (i + 1) / total));
    }
    expect(updates).toBe(0);
    expect(frames).toHaveLength(1);
    frames.shift()!();
    expect(updates).toBe(1);
    const s = useJobs.getState();
    expect(s.progress['job-1'].layers).toHaveLength(total);
    expect(s.progress['job-1'].total).toBe(total);
    expect(s.jobs['job-1'].progress).toBe(1);
    off();
  });

  it('tracks the current matrix and its step, then the phase', () => {
    ingestJobEvent(ev({ type: 'matrix', index: 3, total: 10, name: 'a', shape: [4, 8], bits: 4 }, 0.3));
    ingestJobEvent(ev({ type: 'step', index: 3, total: 10, name: 'a', step: 2, iters: 5, err: 0.25 }, 0.33));
    flushJobEvents();
    expect(useJobs.getState().progress['job-1'].current).toEqual({ index: 3, name: 'a', shape: [4, 8], bits: 4, step: 2, iters: 5, err: 0.25 });
    ingestJobEvent(ev({ type: 'phase', phase: 'backbone' }, 0.99));
    flushJobEvents();
    expect(useJobs.getState().progress['job-1']).toMatchObject({ current: null, phase: 'backbone' });
  });

  it('keeps the newest job info and orders jobs newest first', () => {
    ingestJobEvent({ type: 'job', job: job({ id: 'job-1', started: '2026-01-01T00:00:00Z', state: 'running' }) });
    ingestJobEvent({ type: 'job', job: job({ id: 'job-2', started: '2026-01-01T00:01:00Z', state: 'queued' }) });
    ingestJobEvent({ type: 'job', job: job({ id: 'job-1', started: '2026-01-01T00:00:00Z', state: 'done', progress: 1 }) });
    flushJobEvents();
    const s = useJobs.getState();
    expect(s.order).toEqual(['job-2', 'job-1']);
    expect(s.jobs['job-1'].state).toBe('done');
  });
});
