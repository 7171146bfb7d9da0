// The service's job list across engine restarts: jobs queued or running when the engine
// stopped come back as interrupted, never as running; finished ones as they were.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobInfo } from '../api/contract';
import { makeTempDir, writeTinyModel } from '../test-support/tiny-model';
import { JOB_LOG, JobLog } from './job-log';
import { StudioService } from './studio-service';
import { UserConfigStore } from './user-config';

let tmp: string;
let model: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-jobs-');
  model = join(tmp, 'model');
  await writeTinyModel(model, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const job = (id: string, state: JobInfo['state']): JobInfo => ({ id, kind: 'quantize', state, target: `/runs/${id}`, progress: 0.4, label: 'x', started: '2026-01-01T00:00:00.000Z' });

describe('the job log', () => {
  it('reads live jobs of a stopped engine as interrupted, saying what they were', async () => {
    const runs = join(tmp, 'log');
    const log = new JobLog(runs);
    await rm(runs, { recursive: true, force: true });
    mkdirSync(runs);
    await log.save([job('a', 'done'), job('b', 'running'), job('c', 'queued')]);
    const back = await new JobLog(runs).load(new Date('2026-02-02T00:00:00.000Z'));
    expect(back.map((j) => [j.id, j.state, j.label])).toEqual([
      ['a', 'done', 'x'],
      ['b', 'interrupted', 'interrupted: the engine stopped while this job was running'],
      ['c', 'interrupted', 'interrupted: the engine stopped while this job was queued'],
    ]);
    expect(back[1].finished).toBe('2026-02-02T00:00:00.000Z');
  });

  it('a restarted service lists the jobs it had: a queued job and a running one are interrupted, never running', async () => {
    const runsDir = join(tmp, 'runs');
    const first = new StudioService({ runsDir, demoModel: null, version: 'test', transport: 'websocket', throttleMs: 0 });
    const base = { model, method: 'loftq' as const, bits: 2, quant: 'nf' as const, block: 64, rank: 2, alpha: 2, rslora: false, iters: 2, svd: 'randomized' as const, targets: 'all-linear', seed: 0 };
    const done = await first.startQuantize({ ...base, name: 'finished' });
    // Let the first finish, then queue two more and stop the engine while they wait/run.
    for (let i = 0; i < 600 && (await first.listJobs()).find((j) => j.id === done.id)?.state !== 'done'; i++) await new Promise((r) => setTimeout(r, 50));
    const running = await first.startQuantize({ ...base, name: 'running', iters: 50 });
    const queued = await first.startQuantize({ ...base, name: 'queued' });
    await first.close();
    expect(existsSync(join(runsDir, JOB_LOG))).toBe(true);
    expect(JSON.parse(readFileSync(join(runsDir, JOB_LOG), 'utf8')).jobs).toHaveLength(3);

    const second = new StudioService({ runsDir, demoModel: null, version: 'test', transport: 'websocket', throttleMs: 0 });
    const listed = await second.listJobs();
    const state = (id: string) => listed.find((j) => j.id === id)?.state;
    expect(state(done.id)).toBe('done');
    expect(state(running.id)).toBe('interrupted');
    expect(state(queued.id)).toBe('interrupted');
    expect(listed.some((j) => j.state === 'running' || j.state === 'queued')).toBe(false);
    // The runs list is not disturbed by the service's own file.
    expect((await second.listRuns()).map((r) => r.name)).not.toContain(JOB_LOG);
    await second.close();
  });

  it('a killed engine (no close) comes back with its live jobs interrupted', async () => {
    const runsDir = join(tmp, 'runs-killed');
    mkdirSync(runsDir, { recursive: true });
    // What a killed engine leaves: its last write, with jobs still queued / running.
    await new JobLog(runsDir).save([job('job-x-1', 'running'), job('job-x-2', 'queued')]);
    const service = new StudioService({ runsDir, demoModel: null, version: 'test', transport: 'websocket', throttleMs: 0 });
    expect((await service.listJobs()).map((j) => j.state)).toEqual(['interrupted', 'interrupted']);
    // And it writes that back, so a third start agrees.
    await service.close();
    expect((await new JobLog(runsDir).load()).map((j) => j.state)).toEqual(['interrupted', 'interrupted']);
  });
});

describe('recent models', () => {
  it('are kept in the config store the service was given, across services', async () => {
    const config = new UserConfigStore(join(tmp, 'cfg'));
    const a = new StudioService({ runsDir: join(tmp, 'r1'), demoModel: null, version: 'test', transport: 'websocket', config });
    await a.rememberModel('/models/one');
    await a.rememberModel('/models/two');
    await a.close();
    const b = new StudioService({ runsDir: join(tmp, 'r2'), demoModel: null, version: 'test', transport: 'websocket', config: new UserConfigStore(join(tmp, 'cfg')) });
    expect(await b.recentModels()).toEqual(['/models/two', '/models/one']);
    expect(await b.forgetModel('/models/two')).toEqual(['/models/one']);
    await expect(b.rememberModel('bad\nname')).rejects.toThrow(/one line/);
    await b.close();
  });
});
