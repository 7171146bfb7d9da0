// The compute process's loop over a fake parent port, and the whole IPC path in one process:
// ComputeHost (main) ↔ serveOverPort (compute) ↔ the real StudioService on the demo model.
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent, JobInfo, ModelSummary, RunSummary, StudioApi, WireMessage } from '../api/contract';
import { UserError } from '../engine/errors';
import { StudioService } from '../service/studio-service';
import { makeTempDir } from '../test-support/tiny-model';
import { ComputeHost, SHUTDOWN_MESSAGE, type ComputeChild } from './compute-host';
import { serveOverPort, type ParentPortLike } from './compute-loop';

/** A parent port and the main-side child joined in memory, asynchronous like the real thing. */
function channel() {
  const toCompute: Array<(m: { data: unknown }) => void> = [];
  const toMain: Array<(m: unknown) => void> = [];
  const exits: Array<(code: number) => void> = [];
  const port: ParentPortLike = {
    on: (_event, listener) => toCompute.push(listener),
    postMessage: (m) => setImmediate(() => toMain.forEach((l) => l(m))),
  };
  const child: ComputeChild = {
    postMessage: (m) => setImmediate(() => toCompute.forEach((l) => l({ data: m }))),
    onMessage: (l) => toMain.push(l),
    onExit: (l) => exits.push(l),
    kill: () => exits.forEach((l) => l(137)),
  };
  return { port, child, exit: (code: number) => exits.forEach((l) => l(code)) };
}

/** A StudioApi whose methods are given per test; onEvent exposes the emitter. */
function fakeApi(methods: Partial<StudioApi> & { close?: () => Promise<void> }) {
  let emit: (e: ApiEvent) => void = () => {};
  const api = {
    ...methods,
    onEvent: (l: (e: ApiEvent) => void) => {
      emit = l;
      return () => (emit = () => {});
    },
  } as unknown as StudioApi & { close?: () => Promise<void> };
  return { api, emit: (e: ApiEvent) => emit(e) };
}

describe('serveOverPort', () => {
  function served(api: StudioApi & { close?: () => Promise<void> }) {
    const posted: string[] = [];
    let deliver: (m: { data: unknown }) => void = () => {};
    const port: ParentPortLike = { on: (_e, l) => (deliver = l), postMessage: (m) => posted.push(m as string) };
    const exits: number[] = [];
    const done = serveOverPort(api, port, (code) => exits.push(code));
    const settle = () => new Promise((r) => setTimeout(r, 10));
    return { posted, deliver, exits, done, settle, parsed: () => posted.map((p) => JSON.parse(p) as WireMessage).sort((a, b) => ('id' in a ? a.id : 0) - ('id' in b ? b.id : 0)) };
  }

  it('answers requests through handleRequest, as JSON strings', async () => {
    const { api } = fakeApi({ getRun: async (dir: string) => ({ dir }) as never });
    const s = served(api);
    s.deliver({ data: JSON.stringify({ kind: 'request', id: 7, method: 'getRun', params: ['r1'] }) });
    s.deliver({ data: JSON.stringify({ kind: 'request', id: 8, method: 'nope', params: [] }) });
    s.deliver({ data: { kind: 'request', id: 9, method: 'getRun', params: ['x'] } }); // not a string: ignored
    s.deliver({ data: '{broken' });
    await s.settle();
    expect(s.posted.every((p) => typeof p === 'string')).toBe(true);
    expect(s.parsed()).toEqual([
      { kind: 'response', id: 7, ok: true, result: { dir: 'r1' } },
      { kind: 'response', id: 8, ok: false, error: { message: 'unknown method "nope"', user: true } },
    ]);
  });

  it('keeps user errors and internal errors apart', async () => {
    const { api } = fakeApi({
      inspectModel: async () => {
        throw new UserError('no config.json in /x');
      },
      listRuns: async () => {
        throw new Error('boom');
      },
    });
    const s = served(api);
    s.deliver({ data: JSON.stringify({ kind: 'request', id: 1, method: 'inspectModel', params: ['/x'] }) });
    s.deliver({ data: JSON.stringify({ kind: 'request', id: 2, method: 'listRuns', params: [] }) });
    await s.settle();
    expect(s.parsed()).toEqual([
      { kind: 'response', id: 1, ok: false, error: { message: 'no config.json in /x', user: true } },
      { kind: 'response', id: 2, ok: false, error: { message: 'internal error: boom', user: false } },
    ]);
  });

  it('answers a result that cannot be serialized with an error instead of dying', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const { api } = fakeApi({ listJobs: async () => cyclic as never });
    const s = served(api);
    s.deliver({ data: JSON.stringify({ kind: 'request', id: 3, method: 'listJobs', params: [] }) });
    await s.settle();
    const [reply] = s.parsed();
    expect(reply).toMatchObject({ kind: 'response', id: 3, ok: false, error: { user: false } });
  });

  it('posts events and, on shutdown, closes the service, stops listening and exits 0', async () => {
    let closed = false;
    const { api, emit } = fakeApi({ info: async () => ({}) as never, close: async () => void (closed = true) });
    const s = served(api);
    emit({ type: 'runs-changed' });
    expect(s.parsed()).toEqual([{ kind: 'event', event: { type: 'runs-changed' } }]);
    s.deliver({ data: SHUTDOWN_MESSAGE });
    await s.done;
    expect(closed).toBe(true);
    expect(s.exits).toEqual([0]);
    emit({ type: 'runs-changed' });
    s.deliver({ data: JSON.stringify({ kind: 'request', id: 1, method: 'info', params: [] }) });
    await s.settle();
    expect(s.posted).toHaveLength(1);
  });
});

describe('main ↔ compute over the IPC path, with the real service', () => {
  const demoModel = resolve('assets/demo-model');
  let tmp: string;
  let service: StudioService;
  let host: ComputeHost;
  let exitCodes: number[];
  const events: ApiEvent[] = [];
  let link: ReturnType<typeof channel>;

  beforeAll(async () => {
    tmp = await makeTempDir('loftq-ipc-');
    service = new StudioService({ runsDir: join(tmp, 'runs'), demoModel, version: 'test', transport: 'ipc', throttleMs: 0 });
    link = channel();
    exitCodes = [];
    serveOverPort(service, link.port, (code) => {
      exitCodes.push(code);
      link.exit(code);
    });
    host = new ComputeHost({ spawn: () => link.child, onEvent: (e) => events.push(e) });
  });

  afterAll(async () => {
    await service.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const call = async <T>(method: string, ...params: unknown[]): Promise<T> => {
    const r = await host.request({ method, params });
    if (!r.ok) throw new Error(r.error.message);
    return r.result as T;
  };

  it('answers info and inspects the demo model', async () => {
    const info = await call<{ transport: string; demoModel: string }>('info');
    expect(info).toMatchObject({ transport: 'ipc', demoModel, version: 'test' });
    const model = await call<ModelSummary>('inspectModel', demoModel);
    expect(model.targets.length).toBeGreaterThan(0);
    await expect(call('inspectModel', join(tmp, 'missing'))).rejects.toThrow(/missing/);
  });

  it('runs a quantize job whose progress events reach main, then lists the run', async () => {
    const request = { model: demoModel, name: 'ipc-run', method: 'qlora', bits: 4, quant: 'nf', block: 64, rank: 4, alpha: 4, rslora: false, iters: 1, svd: 'randomized', targets: 'q_proj,v_proj', seed: 0 };
    const job = await call<JobInfo>('startQuantize', request);
    const deadline = Date.now() + 30_000;
    const ended = () => events.find((e) => e.type === 'job' && e.job.id === job.id && e.job.state === 'done');
    while (!ended() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(ended()).toBeDefined();
    expect(events.some((e) => e.type === 'job' && e.job.id === job.id && e.event?.type === 'layer')).toBe(true);
    const runs = await call<RunSummary[]>('listRuns');
    expect(runs.map((r) => r.name)).toEqual(['ipc-run']);
  });

  it('shuts the compute side down cleanly', async () => {
    await host.stop(10_000);
    expect(exitCodes).toEqual([0]);
  });
});
