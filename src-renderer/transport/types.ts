// What the renderer's stores talk to: the contract's StudioApi plus the connection's state.
import type { StudioApi } from '../../src-main/api/contract';
import { inAppWords } from '../lib/app-words';

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface ConnectionStatus {
  state: ConnectionState;
  /** Reconnect attempts since the connection was last open. */
  attempt: number;
  /** Why the connection is down (shown to the user). */
  error?: string;
  /** When the next reconnect attempt starts (ms since epoch), while closed. */
  retryAt?: number;
}

export interface ClientApi extends StudioApi {
  readonly transport: 'ipc' | 'websocket';
  status(): ConnectionStatus;
  onStatus(listener: (status: ConnectionStatus) => void): () => void;
  /** Reconnects now instead of waiting for the backoff (no-op when open or over IPC). */
  reconnect(): void;
  /** Closes the connection for good and rejects whatever is pending. */
  dispose(): void;
}

/** A failed API call: `user` errors are the user's to fix (bad path, name taken...). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly user: boolean,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** An error as the app shows it: the engine's message in the app's words. */
export function errorMessage(e: unknown): string {
  return inAppWords(e instanceof Error ? e.message : String(e));
}
