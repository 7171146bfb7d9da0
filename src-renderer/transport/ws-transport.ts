// StudioApi over the WebSocket of `loftq serve`: numbered requests with a map of pending
// promises, pushed events fanned out to listeners, and reconnection with exponential backoff.
// Requests made while disconnected wait in an outbox (for a bounded time); requests already
// sent when the connection drops are rejected, since the server may or may not have run them.
import type { ApiEvent, ApiMethod, StudioApi, WireMessage } from '../../src-main/api/contract';
import { ApiError, type ClientApi, type ConnectionStatus } from './types';

/** The part of the browser WebSocket the transport uses (a fake one in tests). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

export interface WsTransportOptions {
  url: string;
  createSocket?: SocketFactory;
  /** First reconnect delay; doubles per failed attempt up to maxDelayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Random extra delay, as a fraction of the delay (0 in tests). */
  jitter?: number;
  /** How long a request may wait for a connection before it fails. */
  queueTimeoutMs?: number;
  /** Set when the transport cannot work at all (e.g. no token): shown, and nothing is tried. */
  fatal?: string;
  /**
   * Asks the server whether the page's token is the one it accepts (a browser cannot see why a
   * WebSocket was refused): after a failed connection, 'rejected' stops the retries with a
   * message that says so.
   */
  checkToken?: () => Promise<'ok' | 'rejected' | 'unreachable'>;
}

/** What the user reads when the server refuses the page's token. */
export const TOKEN_REJECTED = 'The engine refused this page’s access token (it was replaced with --new-token, or this address belongs to another engine): open the address that `loftq serve` printed';

const OPEN = 1;

interface Pending {
  method: ApiMethod;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  /** The request text while it waits in the outbox; null once sent. */
  queued: string | null;
  timer?: ReturnType<typeof setTimeout>;
}

type Params<M extends ApiMethod> = Parameters<StudioApi[M]>;
type Result<M extends ApiMethod> = Awaited<ReturnType<StudioApi[M]>>;

export function defaultSocketFactory(url: string): SocketLike {
  return new WebSocket(url) as unknown as SocketLike;
}

export class WsTransport {
  private socket: SocketLike | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(e: ApiEvent) => void>();
  private readonly statusListeners = new Set<(s: ConnectionStatus) => void>();
  private current: ConnectionStatus = { state: 'connecting', attempt: 0 };
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;
  private readonly o: Required<Omit<WsTransportOptions, 'fatal' | 'checkToken'>> & Pick<WsTransportOptions, 'fatal' | 'checkToken'>;

  constructor(options: WsTransportOptions) {
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as WsTransportOptions;
    this.o = {
      createSocket: defaultSocketFactory,
      initialDelayMs: 500,
      maxDelayMs: 10_000,
      jitter: 0.2,
      queueTimeoutMs: 20_000,
      ...given,
    };
    if (this.o.fatal) this.setStatus({ state: 'closed', attempt: 0, error: this.o.fatal });
    else this.open();
  }

  status(): ConnectionStatus {
    return this.current;
  }

  onStatus(listener: (s: ConnectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  onEvent(listener: (e: ApiEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  call<M extends ApiMethod>(method: M, params: Params<M>): Promise<Result<M>> {
    if (this.disposed) return Promise.reject(new ApiError('the connection is closed', false));
    if (this.o.fatal) return Promise.reject(new ApiError(this.o.fatal, true));
    const id = this.nextId++;
    const message: WireMessage = { kind: 'request', id, method, params: params as unknown[] };
    const text = JSON.stringify(message);
    return new Promise<Result<M>>((resolve, reject) => {
      const p: Pending = { method, resolve: resolve as (v: unknown) => void, reject, queued: null };
      this.pending.set(id, p);
      if (this.socket && this.socket.readyState === OPEN) {
        this.socket.send(text);
      } else {
        p.queued = text;
        p.timer = setTimeout(() => {
          if (this.pending.get(id)?.queued !== null) {
            this.pending.delete(id);
            reject(new ApiError(`${method}: not connected to the LoftQ engine`, false));
          }
        }, this.o.queueTimeoutMs);
      }
    });
  }

  reconnect(): void {
    if (this.disposed || this.o.fatal || this.socket) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.open();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onopen = s.onclose = s.onmessage = s.onerror = null;
      s.close(1000, 'closed');
    }
    for (const [id, p] of this.pending) {
      if (p.timer) clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new ApiError(`${p.method}: the connection is closed`, false));
    }
    this.setStatus({ state: 'closed', attempt: this.current.attempt });
  }

  private setStatus(s: ConnectionStatus): void {
    this.current = s;
    for (const l of [...this.statusListeners]) {
      try {
        l(s);
      } catch (e) {
        console.error('connection status listener failed', e);
      }
    }
  }

  private open(): void {
    const attempt = this.current.state === 'open' ? 0 : this.current.attempt;
    this.setStatus({ state: 'connecting', attempt });
    let socket: SocketLike;
    try {
      socket = this.o.createSocket(this.o.url);
    } catch (e) {
      this.scheduleReconnect(e instanceof Error ? e.message : String(e));
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.setStatus({ state: 'open', attempt: 0 });
      this.flush();
    };
    socket.onmessage = (ev) => {
      if (this.socket === socket) this.receive(ev.data);
    };
    socket.onerror = () => {
      // A close event always follows; it decides what happens next.
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      socket.onopen = socket.onclose = socket.onmessage = socket.onerror = null;
      for (const [id, p] of this.pending) {
        if (p.queued !== null) continue; // still waiting to be sent: keep it for the next connection
        this.pending.delete(id);
        p.reject(new ApiError(`${p.method}: the connection to the LoftQ engine was lost`, false));
      }
      if (this.disposed) return;
      const why = ev?.reason ? `closed: ${ev.reason}` : ev?.code && ev.code !== 1006 ? `closed (code ${ev.code})` : 'cannot reach the LoftQ engine';
      const check = this.o.checkToken;
      if (!check || ev?.reason) {
        this.scheduleReconnect(why);
        return;
      }
      void check()
        .catch(() => 'unreachable' as const)
        .then((answer) => {
          if (this.disposed) return;
          if (answer === 'rejected') this.setStatus({ state: 'closed', attempt: this.current.attempt + 1, error: TOKEN_REJECTED });
          else this.scheduleReconnect(why);
        });
    };
  }

  private scheduleReconnect(error: string): void {
    const attempt = this.current.attempt + 1;
    const base = Math.min(this.o.maxDelayMs, this.o.initialDelayMs * 2 ** (attempt - 1));
    const delay = Math.round(base * (1 + this.o.jitter * Math.random()));
    this.setStatus({ state: 'closed', attempt, error, retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.disposed) this.open();
    }, delay);
  }

  private flush(): void {
    for (const p of this.pending.values()) {
      if (p.queued === null || !this.socket) continue;
      const text = p.queued;
      p.queued = null;
      if (p.timer) clearTimeout(p.timer);
      this.socket.send(text);
    }
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') return;
    let msg: WireMessage;
    try {
      msg = JSON.parse(data) as WireMessage;
    } catch {
      console.warn('ignoring a message that is not JSON');
      return;
    }
    if (typeof msg !== 'object' || msg === null) return;
    if (msg.kind === 'response') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new ApiError(msg.error?.message ?? `${p.method} failed`, msg.error?.user ?? false));
    } else if (msg.kind === 'event' && msg.event && typeof msg.event === 'object') {
      for (const l of [...this.listeners]) {
        try {
          l(msg.event);
        } catch (e) {
          console.error('event listener failed', e);
        }
      }
    }
  }
}

/** The StudioApi (with connection state) over one WsTransport. */
export function createWsApi(options: WsTransportOptions): ClientApi {
  const t = new WsTransport(options);
  return {
    transport: 'websocket',
    status: () => t.status(),
    onStatus: (l) => t.onStatus(l),
    reconnect: () => t.reconnect(),
    dispose: () => t.dispose(),
    onEvent: (l) => t.onEvent(l),
    info: () => t.call('info', []),
    inspectModel: (path) => t.call('inspectModel', [path]),
    listRuns: () => t.call('listRuns', []),
    getRun: (dir) => t.call('getRun', [dir]),
    renameRun: (dir, name) => t.call('renameRun', [dir, name]),
    deleteRun: (dir) => t.call('deleteRun', [dir]),
    startQuantize: (r) => t.call('startQuantize', [r]),
    startExport: (r) => t.call('startExport', [r]),
    startEval: (r) => t.call('startEval', [r]),
    startTrain: (r) => t.call('startTrain', [r]),
    startProfile: (r) => t.call('startProfile', [r]),
    getProfile: (r) => t.call('getProfile', [r]),
    cancelJob: (id) => t.call('cancelJob', [id]),
    listJobs: () => t.call('listJobs', []),
    recentModels: () => t.call('recentModels', []),
    rememberModel: (path) => t.call('rememberModel', [path]),
    forgetModel: (path) => t.call('forgetModel', [path]),
  };
}
