// The app's IPC between the preload (renderer side) and Electron main: channel names and the
// envelopes that cross them. Shared by host/ and preload/; constants and types only, so the
// sandboxed preload bundle stays tiny.
import type { ApiEvent, ApiMethod, PickPurpose } from '../api/contract';

export const IPC = {
  /** renderer → main (invoke): one StudioApi call, answered with a CallResult. */
  request: 'studio:request',
  /** renderer → main (invoke): a native dialog, answered with a CallResult holding string | null. */
  pickFolder: 'studio:pick-folder',
  /** renderer → main (invoke): show a path in the OS file manager. */
  reveal: 'studio:reveal',
  /** main → renderer (send): one ApiEvent. */
  event: 'studio:event',
} as const;

/** What the preload sends on IPC.request (main allocates the wire id). */
export interface CallPayload {
  method: ApiMethod;
  params: unknown[];
}

/** The answer to a call; never a thrown error, so messages reach the UI unwrapped. */
export type CallResult = { ok: true; result: unknown } | { ok: false; error: { message: string; user: boolean } };

export type { ApiEvent, PickPurpose };

export const PICK_PURPOSES: readonly PickPurpose[] = ['model', 'export', 'data'];
