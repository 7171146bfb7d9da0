// Main's side of the compute process: forwards validated StudioApi calls to it, matches the
// answers by id, passes its events on, and restarts it when it dies (pending calls fail with a
// clear message; its running jobs are reported failed). Electron-free: main.ts adapts a
// UtilityProcess to ComputeChild, tests use a fake.
import type { ApiEvent, ApiMethod, JobInfo, WireMessage } from '../api/contract';
import { MAX_REQUEST_BYTES, validateCall } from '../wire/rpc';
import type { CallResult } from '../wire/ipc-protocol';

/** The compute process as main sees it. Messages are JSON strings both ways. */
export interface ComputeChild {
  postMessage(message: string): void;
  onMessage(listener: (message: unknown) => void): void;
  onExit(listener: (code: number) => void): void;
  /** Ends the process at once (its exit is still reported through onExit). */
  kill(): void;
}

export interface ComputeHostOptions {
  spawn(): ComputeChild;
  /** Events for the renderer (the compute process's own, and the failures of a crash). */
  onEvent(event: ApiEvent): void;
  log?(line: string): void;
  /** More unexpected exits than this within crashWindowMs: the next restart waits for a call. */
  maxCrashes?: number;
  crashWindowMs?: number;
  now?(): number;
  /** Refuses a renderer's call main must not forward (a message), or lets it through (null). */
  guard?(method: string, params: readonly unknown[]): string | null;
}

/** Sent to the compute process to make it cancel its jobs and exit. */
export const SHUTDOWN_MESSAGE = JSON.stringify({ kind: 'shutdown' });

const TERMINAL = new Set<JobInfo['state']>(['done', 'failed', 'cancelled']);

function failure(message: string, user = false): CallResult {
  return { ok: false, error: { message, user } };
}

export class ComputeHost {
  private child: ComputeChild | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, (r: CallResult) => void>();
  /** The latest state of every unfinished job, to report them failed if the process dies. */
  private readonly jobs = new Map<string, JobInfo>();
  private crashes: number[] = [];
  private stopping = false;
  private exited: (() => void) | null = null;

  constructor(private readonly o: ComputeHostOptions) {}

  get running(): boolean {
    return this.child !== null;
  }

  /** Starts the compute process now (otherwise the first call does). */
  start(): void {
    if (this.child || this.stopping) return;
    const child = this.o.spawn();
    this.child = child;
    child.onMessage((m) => {
      if (this.child === child) this.receive(m);
    });
    child.onExit((code) => {
      if (this.child === child) this.exit(code);
    });
  }

  /**
   * A renderer's payload ({ method, params }), checked like a WebSocket request, then
   * forwarded. Never rejects.
   */
  request(payload: unknown): Promise<CallResult> {
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return Promise.resolve(failure('malformed request', true));
    const { method, params } = payload as Record<string, unknown>;
    const call = validateCall(method, params);
    if (!call.ok) return Promise.resolve(failure(call.message, true));
    const refusal = this.o.guard?.(call.method, call.params) ?? null;
    if (refusal) return Promise.resolve(failure(refusal, true));
    return this.call(call.method, call.params);
  }

  /** Forwards one call (already validated) to the compute process. Never rejects. */
  call(method: ApiMethod, params: unknown[]): Promise<CallResult> {
    if (this.stopping) return Promise.resolve(failure('the app is closing'));
    const id = this.nextId++;
    let raw: string;
    try {
      raw = JSON.stringify({ kind: 'request', id, method, params } satisfies WireMessage);
    } catch {
      return Promise.resolve(failure(`${method}: parameters cannot be sent`, true));
    }
    if (Buffer.byteLength(raw) > MAX_REQUEST_BYTES) return Promise.resolve(failure(`${method}: request too large`, true));
    this.start();
    const child = this.child;
    if (!child) return Promise.resolve(failure('the compute process is not running'));
    return new Promise<CallResult>((resolve) => {
      this.pending.set(id, resolve);
      try {
        child.postMessage(raw);
      } catch (e) {
        this.pending.delete(id);
        resolve(failure(`the compute process cannot be reached: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
  }

  /** Asks the compute process to cancel its jobs and exit; kills it after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child) return;
    const gone = new Promise<void>((resolve) => (this.exited = resolve));
    try {
      child.postMessage(SHUTDOWN_MESSAGE);
    } catch {
      child.kill();
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        child.kill();
        resolve();
      }, graceMs);
    });
    await Promise.race([gone, killed]);
    clearTimeout(timer);
  }

  private receive(m: unknown): void {
    if (typeof m !== 'string') return;
    let msg: WireMessage;
    try {
      msg = JSON.parse(m) as WireMessage;
    } catch {
      return;
    }
    if (typeof msg !== 'object' || msg === null) return;
    if (msg.kind === 'response') {
      const resolve = this.pending.get(msg.id);
      if (!resolve) return;
      this.pending.delete(msg.id);
      resolve(msg.ok ? { ok: true, result: msg.result } : { ok: false, error: msg.error });
    } else if (msg.kind === 'event' && typeof msg.event === 'object' && msg.event !== null) {
      const event = msg.event;
      if (event.type === 'job') {
        if (TERMINAL.has(event.job.state)) this.jobs.delete(event.job.id);
        else this.jobs.set(event.job.id, event.job);
      }
      this.o.onEvent(event);
    }
  }

  private exit(code: number): void {
    this.child = null;
    if (this.stopping) {
      this.failPending('the app is closing');
      this.exited?.();
      return;
    }
    const now = this.o.now?.() ?? Date.now();
    const window = this.o.crashWindowMs ?? 60_000;
    this.crashes = [...this.crashes.filter((t) => now - t < window), now];
    const restartNow = this.crashes.length <= (this.o.maxCrashes ?? 3);
    const what = `the compute process stopped unexpectedly (exit code ${code})`;
    this.o.log?.(`${what}; ${restartNow ? 'restarting it' : 'it keeps crashing: it will restart with the next request'}`);
    this.failPending(`${what}; ${restartNow ? 'it has been restarted' : 'it will restart with the next request'}, try again`);
    const finished = new Date(now).toISOString();
    for (const job of this.jobs.values()) {
      const error = `${what}; the job was lost`;
      this.o.onEvent({ type: 'job', job: { ...job, state: 'failed', error, label: `failed: ${error}`, finished } });
    }
    if (this.jobs.size > 0) this.o.onEvent({ type: 'runs-changed' });
    this.jobs.clear();
    if (restartNow) this.start();
  }

  private failPending(message: string): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const resolve of waiting) resolve(failure(message));
  }
}
