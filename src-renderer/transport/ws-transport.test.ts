import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ApiEvent, JobInfo, StudioApi } from '../../src-main/api/contract';
import { socketFactory } from '../test/fake-socket';
import { createApi, wsUrlFromLocation } from './create-api';
import { ApiError, type ConnectionStatus } from './types';
import { createWsApi, TOKEN_REJECTED } from './ws-transport';

const JOB: JobInfo = { id: 'job-1', kind: 'quantize', state: 'running', target: '/runs/a', progress: 0.5, label: 'x', started: '2026-01-01T00:00:00Z' };

function setup(options: { queueTimeoutMs?: number } = {}) {
  const f = socketFactory();
  const api = createWsApi({ url: 'ws://127.0.0.1:9/api?token=t', createSocket: f.create, initialDelayMs: 100, maxDelayMs: 800, jitter: 0, ...options });
  const statuses: ConnectionStatus[] = [];
  api.onStatus((s) => statuses.push(s));
  return { f, api, statuses };
}

describe('WebSocket transport', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends numbered requests and resolves them by id, in any order', async () => {
    const { f, api } = setup();
    expect(f.last.url).toBe('ws://127.0.0.1:9/api?token=t');
    f.last.open();
    expect(api.status().state).toBe('open');
    const a = api.getRun('/runs/a');
    const b = api.renameRun('/runs/b', 'c');
    const [ra, rb] = f.last.sent;
    expect(ra).toEqual({ kind: 'request', id: 1, method: 'getRun', params: ['/runs/a'] });
    expect(rb).toEqual({ kind: 'request', id: 2, method: 'renameRun', params: ['/runs/b', 'c'] });
    f.last.receive({ kind: 'response', id: 2, ok: true, result: { dir: '/runs/c' } });
    f.last.receive({ kind: 'response', id: 1, ok: true, result: { dir: '/runs/a', layers: [] } });
    await expect(b).resolves.toEqual({ dir: '/runs/c' });
    await expect(a).resolves.toEqual({ dir: '/runs/a', layers: [] });
  });

  it('rejects with the server error and its user flag', async () => {
    const { f, api } = setup();
    f.last.open();
    const p = api.inspectModel('/nope');
    f.last.receive({ kind: 'response', id: f.last.lastRequest().id, ok: false, error: { message: '/nope: no config.json', user: true } });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toBe('/nope: no config.json');
    expect((err as ApiError).user).toBe(true);
  });

  it('queues requests made before the socket opens and sends them on open', async () => {
    const { f, api } = setup();
    const p = api.listRuns();
    expect(f.last.sent).toHaveLength(0);
    f.last.open();
    expect(f.last.sent).toEqual([{ kind: 'request', id: 1, method: 'listRuns', params: [] }]);
    f.last.receive({ kind: 'response', id: 1, ok: true, result: [] });
    await expect(p).resolves.toEqual([]);
  });

  it('fans events out to every listener; unsubscribing and a failing listener do not disturb the others', () => {
    const { f, api } = setup();
    f.last.open();
    const a: ApiEvent[] = [];
    const b: ApiEvent[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    api.onEvent(() => {
      throw new Error('boom');
    });
    const offA = api.onEvent((e) => a.push(e));
    api.onEvent((e) => b.push(e));
    f.last.receive({ kind: 'event', event: { type: 'job', job: JOB, event: { type: 'matrix', index: 0, total: 2, name: 'm', shape: [2, 2], bits: 2 } } });
    offA();
    f.last.receive({ kind: 'event', event: { type: 'runs-changed' } });
    expect(a.map((e) => e.type)).toEqual(['job']);
    expect(b.map((e) => e.type)).toEqual(['job', 'runs-changed']);
    expect(spy).toHaveBeenCalledTimes(2);
  });

  it('ignores malformed messages and responses nobody waits for', async () => {
    const { f, api } = setup();
    f.last.open();
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const p = api.info();
    f.last.receive('not json{');
    f.last.receive({ kind: 'response', id: 99, ok: true, result: 1 });
    f.last.receive('null');
    f.last.receive({ kind: 'response', id: 1, ok: true, result: { version: '1' } });
    await expect(p).resolves.toEqual({ version: '1' });
  });

  it('on a dropped connection: rejects requests in flight, keeps unsent ones, reconnects with growing backoff', async () => {
    const { f, api, statuses } = setup();
    f.last.open();
    const inflight = api.listJobs();
    f.last.drop();
    await expect(inflight).rejects.toThrow(/connection to the LoftQ engine was lost/);
    expect(api.status()).toMatchObject({ state: 'closed', attempt: 1 });

    const queued = api.listRuns(); // made while disconnected
    expect(f.sockets).toHaveLength(1);
    vi.advanceTimersByTime(99);
    expect(f.sockets).toHaveLength(1);
    vi.advanceTimersByTime(1); // 100 ms: second socket
    expect(f.sockets).toHaveLength(2);
    f.last.drop();
    expect(api.status()).toMatchObject({ state: 'closed', attempt: 2 });
    vi.advanceTimersByTime(199);
    expect(f.sockets).toHaveLength(2);
    vi.advanceTimersByTime(1); // 200 ms: third
    f.last.drop();
    vi.advanceTimersByTime(400); // 400 ms: fourth
    f.last.drop();
    vi.advanceTimersByTime(800); // capped at 800
    f.last.drop();
    vi.advanceTimersByTime(800);
    expect(f.sockets).toHaveLength(6);

    f.last.open();
    expect(api.status()).toEqual({ state: 'open', attempt: 0 });
    const req = f.last.lastRequest();
    expect(req.method).toBe('listRuns');
    f.last.receive({ kind: 'response', id: req.id, ok: true, result: ['r'] });
    await expect(queued).resolves.toEqual(['r']);
    // After a successful open, the backoff starts again from the first delay.
    f.last.drop();
    vi.advanceTimersByTime(100);
    expect(f.sockets).toHaveLength(7);
    expect(statuses.map((s) => s.state)).toContain('connecting');
  });

  it('says the access token was refused when the server says so, and stops retrying', async () => {
    const f = socketFactory();
    const checkToken = vi.fn(async () => 'rejected' as const);
    const api = createWsApi({ url: 'ws://127.0.0.1:9/api?token=old', createSocket: f.create, initialDelayMs: 100, maxDelayMs: 800, jitter: 0, checkToken });
    f.last.drop();
    await vi.advanceTimersByTimeAsync(0);
    expect(checkToken).toHaveBeenCalledTimes(1);
    expect(api.status()).toMatchObject({ state: 'closed', error: TOKEN_REJECTED });
    await vi.advanceTimersByTimeAsync(5000);
    expect(f.sockets).toHaveLength(1);
    // An engine that is simply down keeps being retried.
    const g = socketFactory();
    const down = createWsApi({ url: 'ws://127.0.0.1:9/api?token=t', createSocket: g.create, initialDelayMs: 100, maxDelayMs: 800, jitter: 0, checkToken: async () => 'unreachable' as const });
    g.last.drop();
    await vi.advanceTimersByTimeAsync(0);
    expect(down.status()).toMatchObject({ state: 'closed', error: 'cannot reach the LoftQ engine' });
    await vi.advanceTimersByTimeAsync(100);
    expect(g.sockets).toHaveLength(2);
  });

  it('fails a queued request after the queue timeout', async () => {
    const { api } = setup({ queueTimeoutMs: 1000 });
    const p = api.info();
    const check = expect(p).rejects.toThrow(/not connected/);
    vi.advanceTimersByTime(1000);
    await check;
  });

  it('reconnect() skips the wait; dispose() rejects pending requests and stops reconnecting', async () => {
    const { f, api } = setup();
    f.last.drop();
    expect(f.sockets).toHaveLength(1);
    api.reconnect();
    expect(f.sockets).toHaveLength(2);
    f.last.open();
    const p = api.listJobs();
    api.dispose();
    await expect(p).rejects.toThrow(/closed/);
    expect(f.last.closedWith).toMatchObject({ code: 1000 });
    vi.advanceTimersByTime(60_000);
    expect(f.sockets).toHaveLength(2);
    await expect(api.info()).rejects.toThrow(/closed/);
  });
});

describe('createApi', () => {
  it('builds the WebSocket URL from the page URL and its token', () => {
    expect(wsUrlFromLocation({ protocol: 'http:', host: '127.0.0.1:8123', search: '?token=a+b/c', hash: '#/runs' })).toBe('ws://127.0.0.1:8123/api?token=a%20b%2Fc');
    expect(wsUrlFromLocation({ protocol: 'https:', host: 'gpu.box:443', search: '?token=xyz', hash: '' })).toBe('wss://gpu.box:443/api?token=xyz');
    expect(wsUrlFromLocation({ protocol: 'http:', host: 'h', search: '', hash: '' })).toBeNull();
  });

  it('uses window.studio (the preload) when present', async () => {
    const studio = { info: vi.fn(async () => ({ runsDir: '/r', demoModel: null, version: '1', transport: 'ipc' as const })), onEvent: vi.fn(() => () => undefined) } as unknown as StudioApi;
    const api = createApi({ studio, location: { protocol: 'file:', host: '', search: '', hash: '' } } as unknown as Window);
    expect(api.transport).toBe('ipc');
    expect(api.status().state).toBe('open');
    await expect(api.info()).resolves.toMatchObject({ transport: 'ipc' });
    api.onEvent(() => undefined);
    expect(studio.onEvent).toHaveBeenCalledOnce();
  });

  it('falls back to the browser WebSocket when no factory is given', () => {
    const created: string[] = [];
    class StubSocket {
      readyState = 0;
      onopen = null;
      onclose = null;
      onmessage = null;
      onerror = null;
      constructor(url: string) {
        created.push(url);
      }
      send() {}
      close() {}
    }
    vi.stubGlobal('WebSocket', StubSocket);
    const api = createApi({ location: { protocol: 'http:', host: '127.0.0.1:7', search: '?token=T', hash: '' } } as unknown as Window);
    expect(created).toEqual(['ws://127.0.0.1:7/api?token=T']);
    expect(api.status().state).toBe('connecting');
    api.dispose();
    vi.unstubAllGlobals();
  });

  it('connects to this host with the token, and explains a missing token', async () => {
    const f = socketFactory();
    const api = createApi({ location: { protocol: 'http:', host: '127.0.0.1:7', search: '?token=T', hash: '' } } as unknown as Window, f.create);
    expect(api.transport).toBe('websocket');
    expect(f.last.url).toBe('ws://127.0.0.1:7/api?token=T');
    api.dispose();
    const none = createApi({ location: { protocol: 'http:', host: '127.0.0.1:7', search: '', hash: '' } } as unknown as Window, f.create);
    expect(f.sockets).toHaveLength(1);
    expect(none.status()).toMatchObject({ state: 'closed' });
    expect(none.status().error).toMatch(/access token/);
    await expect(none.listRuns()).rejects.toThrow(/access token/);
  });
});
