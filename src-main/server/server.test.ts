// `loftq serve`'s server with the real StudioService: access control, request validation,
// a quantize job with progress events, cancel, runs management, static files.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ApiEvent, JobInfo, WireMessage } from '../api/contract';
import { StudioService } from '../service/studio-service';
import { makeTempDir } from '../test-support/tiny-model';
import { startServer, type RunningServer } from './server';

const demoModel = resolve('assets/demo-model');
let tmp: string;
let service: StudioService;
let server: RunningServer;

/** A small client of the wire protocol: call(method, ...params) and collected events. */
class Client {
  private nextId = 1;
  private pending = new Map<number, (m: WireMessage) => void>();
  readonly events: ApiEvent[] = [];
  private waiters: Array<{ test: (e: ApiEvent) => boolean; resolve: (e: ApiEvent) => void }> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as WireMessage;
      if (m.kind === 'response') this.pending.get(m.id)?.(m);
      if (m.kind === 'event') {
        this.events.push(m.event);
        this.waiters = this.waiters.filter((w) => (w.test(m.event) ? (w.resolve(m.event), false) : true));
      }
    });
  }

  static connect(url: string, headers: Record<string, string> = {}): Promise<Client> {
    return new Promise((ok, fail) => {
      const ws = new WebSocket(url, { headers });
      ws.once('open', () => ok(new Client(ws)));
      ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', fail);
    });
  }

  raw(payload: unknown): Promise<WireMessage> {
    const id = (payload as { id: number }).id;
    return new Promise((ok) => {
      this.pending.set(id, ok);
      this.ws.send(JSON.stringify(payload));
    });
  }

  async call<T>(method: string, ...params: unknown[]): Promise<T> {
    const m = await this.raw({ kind: 'request', id: this.nextId++, method, params });
    if (m.kind !== 'response') throw new Error('not a response');
    if (!m.ok) throw new Error(m.error.message);
    return m.result as T;
  }

  waitFor(test: (e: ApiEvent) => boolean): Promise<ApiEvent> {
    const seen = this.events.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((r) => this.waiters.push({ test, resolve: r }));
  }

  close(): void {
    this.ws.close();
  }
}

const wsUrl = (token = server.token) => `ws://127.0.0.1:${server.port}/api?token=${token}`;
const jobEnded = (id: string) => (e: ApiEvent) => e.type === 'job' && e.job.id === id && ['done', 'failed', 'cancelled'].includes(e.job.state);

beforeAll(async () => {
  tmp = await makeTempDir('loftq-serve-');
  service = new StudioService({ runsDir: join(tmp, 'runs'), demoModel, version: 'test', transport: 'websocket', throttleMs: 0 });
  mkdirSync(join(tmp, 'static'));
  writeFileSync(join(tmp, 'static', 'index.html'), '<!doctype html><title>LoftQ Studio</title>');
  server = await startServer({ api: service, port: 0, host: '127.0.0.1', staticDir: join(tmp, 'static') });
});

afterAll(async () => {
  await service.close();
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('access control', () => {
  it('prints a URL with a random token and refuses WebSockets without it', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}$/);
    await expect(Client.connect(`ws://127.0.0.1:${server.port}/api`)).rejects.toThrow(/403/);
    await expect(Client.connect(wsUrl('x'.repeat(32)))).rejects.toThrow(/403/);
  });

  it('tells the page whether its token is accepted (GET /api/token), so it can say why it cannot connect', async () => {
    const status = async (token: string, host?: string) =>
      (await fetch(`http://127.0.0.1:${server.port}/api/token?token=${encodeURIComponent(token)}`, { headers: host ? { Host: host } : {} })).status;
    expect(await status(server.token)).toBe(204);
    expect(await status('x'.repeat(32))).toBe(403);
    expect(await status('')).toBe(403);
  });

  it('refuses a cross-site Origin and a foreign Host (DNS rebinding)', async () => {
    await expect(Client.connect(wsUrl(), { Origin: 'http://evil.example' })).rejects.toThrow(/403/);
    await expect(Client.connect(wsUrl(), { Host: `evil.example:${server.port}` })).rejects.toThrow(/403/);
    const ok = await Client.connect(wsUrl(), { Origin: `http://127.0.0.1:${server.port}` });
    ok.close();
  });
});

describe('requests', () => {
  it('validates every request before running anything', async () => {
    const c = await Client.connect(wsUrl());
    try {
      const bad = async (payload: unknown) => {
        const m = await c.raw(payload);
        return m.kind === 'response' && !m.ok ? m.error.message : 'accepted';
      };
      expect(await bad({ kind: 'request', id: 1, method: 'rmrf', params: [] })).toMatch(/unknown method/);
      expect(await bad({ kind: 'request', id: 2, method: 'getRun', params: [] })).toMatch(/takes 1 parameter/);
      expect(await bad({ kind: 'request', id: 3, method: 'getRun', params: [42] })).toMatch(/must be a string/);
      expect(await bad({ kind: 'request', id: 4, method: 'startQuantize', params: ['x'] })).toMatch(/must be an object/);
      expect(await bad({ kind: 'request', id: 5, method: 'deleteRun', params: ['../../etc'] })).toMatch(/not inside the runs folder/);
      expect(await bad({ kind: 'request', id: 6, method: 'startQuantize', params: [{ name: '../escape' }] })).toMatch(/run name must be/);
      // Not JSON at all: no answer, and the connection keeps working.
      c.ws.send('{not json');
      expect((await c.call<{ version: string }>('info')).version).toBe('test');
    } finally {
      c.close();
    }
  });

  it('inspects the demo model', async () => {
    const c = await Client.connect(wsUrl());
    try {
      const info = await c.call<{ demoModel: string; runsDir: string; device: { kind: string; name: string; cuda: { available: boolean; reason: string } } }>('info');
      expect(info.demoModel).toBe(demoModel);
      // What `auto` runs on, and why not the GPU where there is none.
      expect(info.device.kind).toBe(info.device.cuda.available ? 'cuda' : 'cpu');
      expect(info.device.cuda.reason.length).toBeGreaterThan(0);
      const m = await c.call<{ architecture: string; targets: unknown[] }>('inspectModel', info.demoModel);
      expect(m.architecture).toBe('llama');
      expect(m.targets).toHaveLength(28);
    } finally {
      c.close();
    }
  });
});

describe('jobs and runs', () => {
  const request = { model: demoModel, method: 'loftq', bits: 2, quant: 'nf', block: 64, rank: 4, alpha: 4, rslora: false, iters: 2, svd: 'randomized', targets: 'q_proj,v_proj', seed: 0 };

  it('runs a quantize job with progress events and lists, renames and deletes the run', async () => {
    const c = await Client.connect(wsUrl());
    try {
      const job = await c.call<JobInfo>('startQuantize', { ...request, name: 'first' });
      expect(job.state === 'queued' || job.state === 'running').toBe(true);
      const end = (await c.waitFor(jobEnded(job.id))) as Extract<ApiEvent, { type: 'job' }>;
      expect(end.job.state).toBe('done');
      const layerEvents = c.events.filter((e) => e.type === 'job' && e.event?.type === 'layer');
      expect(layerEvents).toHaveLength(8);
      const runs = await c.call<Array<{ name: string; record: { status: string } }>>('listRuns');
      expect(runs.map((r) => [r.name, r.record.status])).toEqual([['first', 'done']]);
      const detail = await c.call<{ layers: unknown[]; record: { config: { rank: number } } }>('getRun', 'first');
      expect(detail.layers).toHaveLength(8);
      expect(detail.record.config.rank).toBe(4);

      const renamed = await c.call<{ dir: string; name: string }>('renameRun', 'first', 'renamed');
      expect(renamed.name).toBe('renamed');
      const config = JSON.parse(readFileSync(join(renamed.dir, 'adapter', 'adapter_config.json'), 'utf8'));
      expect(config.base_model_name_or_path).toBe(join(renamed.dir, 'backbone'));
      await expect(c.call('renameRun', 'renamed', 'a/b')).rejects.toThrow(/run name must be/);
      await c.call('deleteRun', 'renamed');
      expect(existsSync(renamed.dir)).toBe(false);
      expect(await c.call('listRuns')).toEqual([]);
    } finally {
      c.close();
    }
  });

  it('cancels a running job: the run is marked cancelled', async () => {
    const c = await Client.connect(wsUrl());
    try {
      const job = await c.call<JobInfo>('startQuantize', { ...request, name: 'to-cancel', targets: 'all-linear', rank: 16, alpha: 16, iters: 5 });
      await c.waitFor((e) => e.type === 'job' && e.job.id === job.id && e.event?.type === 'layer');
      await c.call('cancelJob', job.id);
      const end = (await c.waitFor(jobEnded(job.id))) as Extract<ApiEvent, { type: 'job' }>;
      expect(end.job.state).toBe('cancelled');
      const run = await c.call<{ record: { status: string } }>('getRun', 'to-cancel');
      expect(run.record.status).toBe('cancelled');
      await expect(c.call('cancelJob', job.id)).rejects.toThrow(/no running or queued job/);
    } finally {
      c.close();
    }
  });
});

describe('fine-tuning', () => {
  const request = { model: demoModel, method: 'loftq', bits: 4, quant: 'nf', block: 64, rank: 4, alpha: 4, rslora: false, iters: 1, svd: 'randomized', targets: 'q_proj,v_proj', seed: 0 };
  const data = resolve('assets/demo-data/train.txt');
  const settings = { data, steps: 6, batch: 2, seqLen: 64, lr: 0.002, warmup: 1, evalEvery: 3 };

  it('trains a run with live loss events; a cancelled training resumes with the same settings; bad settings are refused in one line', async () => {
    const c = await Client.connect(wsUrl());
    try {
      const q = await c.call<JobInfo>('startQuantize', { ...request, name: 'to-train' });
      expect(((await c.waitFor(jobEnded(q.id))) as Extract<ApiEvent, { type: 'job' }>).job.state).toBe('done');

      await expect(c.call('startTrain', { run: 'to-train', data: '' })).rejects.toThrow(/a training data file is required/);
      await expect(c.call('startTrain', { run: 'to-train', data, steps: 'many' })).rejects.toThrow(/^Steps must be a number$/);
      await expect(c.call('startTrain', { run: '../outside', data })).rejects.toThrow(/not inside the runs folder/);

      // Cancel after the first step, then start again with the same settings: it resumes.
      const first = await c.call<JobInfo>('startTrain', { run: 'to-train', ...settings });
      expect(first.kind).toBe('train');
      await c.waitFor((e) => e.type === 'job' && e.job.id === first.id && e.event?.type === 'train' && e.event.loss !== undefined);
      await c.call('cancelJob', first.id);
      expect(((await c.waitFor(jobEnded(first.id))) as Extract<ApiEvent, { type: 'job' }>).job.state).toBe('cancelled');
      const stopped = await c.call<{ record: { training: { status: string; step: number } } }>('getRun', 'to-train');
      expect(stopped.record.training.status).toBe('cancelled');
      expect(stopped.record.training.step).toBeLessThan(6);

      const again = await c.call<JobInfo>('startTrain', { run: 'to-train', ...settings });
      const end = (await c.waitFor(jobEnded(again.id))) as Extract<ApiEvent, { type: 'job' }>;
      expect(end.job.state, end.job.error).toBe('done');
      expect(end.job.result).toMatchObject({ status: 'done', step: 6, steps: 6, resumed_from: stopped.record.training.step });
      const losses = c.events.filter((e) => e.type === 'job' && e.job.id === again.id && e.event?.type === 'train' && e.event.loss !== undefined);
      expect(losses.length).toBeGreaterThan(0);
      const detail = await c.call<{ record: { training: { status: string; last_eval_ppl: number; best_eval_ppl: number } }; metrics: Array<{ eval_ppl?: number }> }>('getRun', 'to-train');
      expect(detail.record.training.status).toBe('done');
      expect(detail.record.training.last_eval_ppl).toBeGreaterThan(1);
      // The best over the whole training, the part before the resume included.
      const evals = detail.metrics.map((m) => m.eval_ppl).filter((v): v is number => typeof v === 'number');
      expect(detail.record.training.best_eval_ppl).toBe(Math.min(...evals));
      // A changed setting is refused, naming it (the run's adapter is not silently retrained).
      const changed = await c.call<JobInfo>('startTrain', { run: 'to-train', ...settings, lr: 0.01 });
      const changedEnd = (await c.waitFor(jobEnded(changed.id))) as Extract<ApiEvent, { type: 'job' }>;
      expect(changedEnd.job.state).toBe('failed');
      expect(changedEnd.job.error).toMatch(/was 0\.002, now 0\.01; start a new run or use the same settings/);
    } finally {
      c.close();
    }
  }, 120_000);
});

describe('planner profiles', () => {
  it('profiles a model once (a second request is answered from the cache), and serves the profile', async () => {
    const c = await Client.connect(wsUrl());
    try {
      const req = { model: demoModel, quant: 'nf', block: 64, maxRank: 8 };
      expect(await c.call('getProfile', req)).toBeNull();
      await expect(c.call('getProfile', { ...req, quant: 'q9' })).rejects.toThrow(/quantizer must be nf, uniform or ggml/);
      const job = await c.call<JobInfo>('startProfile', req);
      expect(job.kind).toBe('profile');
      const end = (await c.waitFor(jobEnded(job.id))) as Extract<ApiEvent, { type: 'job' }>;
      expect(end.job.state, end.job.error).toBe('done');
      expect(end.job.result).toMatchObject({ cached: false, matrices: 28 });
      const profile = await c.call<{ max_rank: number; matrices: Array<{ bits: Record<string, { sv: number[] }> }> }>('getProfile', req);
      expect(profile.max_rank).toBe(8);
      expect(profile.matrices).toHaveLength(28);
      expect(profile.matrices[0].bits['2'].sv).toHaveLength(8);
      const again = await c.call<JobInfo>('startProfile', req);
      expect(((await c.waitFor(jobEnded(again.id))) as Extract<ApiEvent, { type: 'job' }>).job.result).toMatchObject({ cached: true });
    } finally {
      c.close();
    }
  }, 60_000);
});

describe('the runs folder', () => {
  it('tells clients when something else (the CLI) changes it', async () => {
    const c = await Client.connect(wsUrl());
    try {
      const before = c.events.length;
      mkdirSync(join(service.runsDir, 'from-cli'));
      writeFileSync(join(service.runsDir, 'from-cli', 'metrics.jsonl'), '{}\n');
      await c.waitFor((e) => e.type === 'runs-changed' && c.events.indexOf(e) >= before);
    } finally {
      c.close();
    }
  });
});

describe('static files', () => {
  it('serves the dashboard with a strict CSP and nothing outside its folder', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    const index = await fetch(`${base}/`);
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('LoftQ Studio');
    expect(index.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    const traversal = await fetch(`${base}/..%2f..%2fpackage.json`);
    expect([403, 404]).toContain(traversal.status);
    expect(await traversal.text()).not.toContain('loftq-studio');
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
    // A malformed % escape is a bad request, not a server error.
    expect((await fetch(`${base}/%E0%A4%A`)).status).toBe(400);
  });
});
