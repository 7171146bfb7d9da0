// The request side of the wire protocol: parse, validate and dispatch one message to a
// StudioApi. Every request is checked (shape, method name, parameter types) before any
// engine code runs; anything malformed gets an error response, never an exception.
import { API_METHODS, type ApiMethod, type StudioApi, type WireMessage } from '../api/contract';
import { UserError } from '../engine/errors';
import { jsonDepth } from '../engine/io/json-file';

type ParamKind = 'string' | 'object';

/** Parameter kinds per method: the service checks the values' meaning. */
const PARAMS: Record<ApiMethod, ParamKind[]> = {
  info: [],
  inspectModel: ['string'],
  listRuns: [],
  getRun: ['string'],
  renameRun: ['string', 'string'],
  deleteRun: ['string'],
  startQuantize: ['object'],
  startExport: ['object'],
  startEval: ['object'],
  startTrain: ['object'],
  startProfile: ['object'],
  getProfile: ['object'],
  cancelJob: ['string'],
  listJobs: [],
  recentModels: [],
  rememberModel: ['string'],
  forgetModel: ['string'],
};

/** Largest request accepted, in bytes (requests are small; this bounds a hostile client). */
export const MAX_REQUEST_BYTES = 1 << 20;
/** Requests nest a few levels (a job's options); deeper is hostile, refused before parsing. */
const MAX_REQUEST_DEPTH = 32;

export type CallCheck = { ok: true; method: ApiMethod; params: unknown[] } | { ok: false; message: string };

/**
 * Checks one call's method name and parameter kinds (not their meaning: the service does
 * that). Shared by every transport: the WebSocket server and the app's IPC bridge.
 */
export function validateCall(method: unknown, params: unknown): CallCheck {
  if (typeof method !== 'string' || !(API_METHODS as readonly string[]).includes(method)) return { ok: false, message: `unknown method ${JSON.stringify(method)}` };
  const expected = PARAMS[method as ApiMethod];
  if (!Array.isArray(params) || params.length !== expected.length) return { ok: false, message: `${method} takes ${expected.length} parameter(s)` };
  for (let i = 0; i < expected.length; i++) {
    const p: unknown = params[i];
    const ok = expected[i] === 'string' ? typeof p === 'string' : typeof p === 'object' && p !== null && !Array.isArray(p);
    if (!ok) return { ok: false, message: `${method}: parameter ${i + 1} must be a${expected[i] === 'object' ? 'n object' : ' string'}` };
  }
  return { ok: true, method: method as ApiMethod, params };
}

export async function handleRequest(api: StudioApi, raw: string): Promise<WireMessage | null> {
  let msg: unknown;
  if (raw.length > MAX_REQUEST_BYTES || jsonDepth(raw) > MAX_REQUEST_DEPTH) return null;
  try {
    msg = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof msg !== 'object' || msg === null) return null;
  const { kind, id, method, params } = msg as Record<string, unknown>;
  if (kind !== 'request' || typeof id !== 'number' || !Number.isSafeInteger(id)) return null;
  const fail = (message: string, user = true): WireMessage => ({ kind: 'response', id, ok: false, error: { message, user } });
  const call = validateCall(method, params);
  if (!call.ok) return fail(call.message);
  try {
    const fn = api[call.method] as (...args: unknown[]) => Promise<unknown>;
    const result = await fn.apply(api, call.params);
    return { kind: 'response', id, ok: true, result: result ?? null };
  } catch (e) {
    if (e instanceof UserError) return fail(e.message);
    return fail(`internal error: ${e instanceof Error ? e.message : String(e)}`, false);
  }
}
