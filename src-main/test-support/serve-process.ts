// Test support: `loftq serve` as users run it (the bundled CLI in a child process), and a
// minimal client of its WebSocket API that times each call.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import WebSocket from 'ws';
import type { ApiEvent, JobInfo, WireMessage } from '../api/contract';
import { CLI } from './cli';

export interface ServeProcess {
  child: ChildProcess;
  /** ws://host:port/api?token=… */
  api: string;
  /** Sends `signal` and resolves with the exit code (or the signal's name) and how long it took. */
  stop(signal: NodeJS.Signals): Promise<{ code: number | string; ms: number }>;
}

/** Starts `loftq serve` on a free port; its config folder (the kept port and token) sits beside `runs`. */
export function startServe(runs: string): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, XDG_CONFIG_HOME: join(dirname(runs), 'config') };
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--runs', runs], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    const exited = new Promise<number | string>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? -1)));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      const m = /http:\/\/([^/\s]+)\/\?token=(\S+)/.exec(out);
      if (!m) return;
      resolve({
        child,
        api: `ws://${m[1]}/api?token=${m[2]}`,
        async stop(signal) {
          const started = performance.now();
          child.kill(signal);
          const code = await exited;
          return { code, ms: performance.now() - started };
        },
      });
    });
    void exited.then((code) => reject(new Error(`loftq serve exited (${code}) before listening: ${err}`)));
  });
}

/** Calls the API and collects job events. */
export class ApiClient {
  private nextId = 1;
  private readonly replies = new Map<number, (m: WireMessage) => void>();
  readonly jobs = new Map<string, JobInfo>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as WireMessage;
      if (m.kind === 'response') this.replies.get(m.id)?.(m);
      else if (m.kind === 'event') this.onEvent(m.event);
    });
  }

  private onEvent(e: ApiEvent): void {
    if (e.type === 'job') this.jobs.set(e.job.id, e.job);
  }

  static connect(url: string): Promise<ApiClient> {
    return new Promise((ok, fail) => {
      const ws = new WebSocket(url);
      ws.once('open', () => ok(new ApiClient(ws)));
      ws.once('error', fail);
    });
  }

  /** The result, and the milliseconds from sending to the reply. */
  async timed<T>(method: string, ...params: unknown[]): Promise<{ result: T; ms: number }> {
    const id = this.nextId++;
    const started = performance.now();
    const reply = await new Promise<WireMessage>((r) => {
      this.replies.set(id, r);
      this.ws.send(JSON.stringify({ kind: 'request', id, method, params }));
    });
    this.replies.delete(id);
    if (reply.kind !== 'response') throw new Error('not a response');
    if (!reply.ok) throw new Error(reply.error.message);
    return { result: reply.result as T, ms: performance.now() - started };
  }

  async call<T>(method: string, ...params: unknown[]): Promise<T> {
    return (await this.timed<T>(method, ...params)).result;
  }

  /** Resolves once job `id` is in one of `states`, polling the events seen so far. */
  async waitForJob(id: string, states: string[], timeoutMs: number): Promise<JobInfo> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const job = this.jobs.get(id);
      if (job && states.includes(job.state)) return job;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`job ${id} not ${states.join('/')} within ${timeoutMs} ms (last: ${JSON.stringify(this.jobs.get(id))})`);
  }

  close(): void {
    this.ws.close();
  }
}
