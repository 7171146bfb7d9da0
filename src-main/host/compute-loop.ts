// The compute process's side: StudioApi calls arrive as JSON strings on the parent port and
// go through the same handleRequest as the WebSocket transport; answers and events go back as
// JSON strings (so the app sees exactly what a browser sees over WebSocket).
import type { StudioApi, WireMessage } from '../api/contract';
import { handleRequest } from '../wire/rpc';
import { SHUTDOWN_MESSAGE } from './compute-host';

/** Electron's process.parentPort, as far as this loop uses it. */
export interface ParentPortLike {
  on(event: 'message', listener: (message: { data: unknown }) => void): unknown;
  postMessage(message: unknown): void;
}

export interface ClosableApi extends StudioApi {
  /** Cancels the jobs and waits for them to wind down. */
  close?(): Promise<void>;
}

function serialize(reply: WireMessage): string {
  try {
    return JSON.stringify(reply);
  } catch (e) {
    if (reply.kind !== 'response') throw e;
    const error = { message: `internal error: the result cannot be sent (${e instanceof Error ? e.message : String(e)})`, user: false };
    return JSON.stringify({ kind: 'response', id: reply.id, ok: false, error } satisfies WireMessage);
  }
}

/**
 * Serves api on port until the parent asks to shut down; then closes api and calls exit.
 * Returns a promise of the shutdown's completion (tests await it).
 */
export function serveOverPort(api: ClosableApi, port: ParentPortLike, exit: (code: number) => void): Promise<void> {
  let shutdown: () => void = () => {};
  const done = new Promise<void>((resolve) => (shutdown = resolve));
  let closing = false;
  const unsubscribe = api.onEvent((event) => {
    try {
      port.postMessage(serialize({ kind: 'event', event }));
    } catch {
      // an event that cannot be serialized is dropped, never fatal
    }
  });
  port.on('message', ({ data }) => {
    if (typeof data !== 'string' || closing) return;
    if (data === SHUTDOWN_MESSAGE) {
      closing = true;
      unsubscribe();
      Promise.resolve()
        .then(() => api.close?.())
        .catch(() => undefined)
        .then(() => {
          shutdown();
          exit(0);
        });
      return;
    }
    void handleRequest(api, data).then((reply) => {
      if (reply) port.postMessage(serialize(reply));
    });
  });
  return done;
}
