// The one place that picks a transport: Electron's preload exposes the StudioApi as
// window.studio (IPC); in a browser the page talks to `loftq serve` over WebSocket, with the
// access token taken from the page's own URL.
import type { StudioApi } from '../../src-main/api/contract';
import type { ClientApi, ConnectionStatus } from './types';
import { createWsApi, type SocketFactory } from './ws-transport';

declare global {
  interface Window {
    studio?: StudioApi;
  }
}

/** ws(s)://<this host>/api?token=<token from this page's query>, or null without a token. */
export function wsUrlFromLocation(loc: Pick<Location, 'protocol' | 'host' | 'search' | 'hash'>): string | null {
  const token = new URLSearchParams(loc.search).get('token');
  if (!token) return null;
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${loc.host}/api?token=${encodeURIComponent(token)}`;
}

/** Wraps the preload's api: always connected, nothing to reconnect. */
export function ipcApi(studio: StudioApi): ClientApi {
  const open: ConnectionStatus = { state: 'open', attempt: 0 };
  return {
    transport: 'ipc',
    status: () => open,
    onStatus: () => () => undefined,
    reconnect: () => undefined,
    dispose: () => undefined,
    onEvent: (l) => studio.onEvent(l),
    info: () => studio.info(),
    inspectModel: (path) => studio.inspectModel(path),
    listRuns: () => studio.listRuns(),
    getRun: (dir) => studio.getRun(dir),
    renameRun: (dir, name) => studio.renameRun(dir, name),
    deleteRun: (dir) => studio.deleteRun(dir),
    startQuantize: (r) => studio.startQuantize(r),
    startExport: (r) => studio.startExport(r),
    startEval: (r) => studio.startEval(r),
    startTrain: (r) => studio.startTrain(r),
    startProfile: (r) => studio.startProfile(r),
    getProfile: (r) => studio.getProfile(r),
    cancelJob: (id) => studio.cancelJob(id),
    listJobs: () => studio.listJobs(),
    recentModels: () => studio.recentModels(),
    rememberModel: (path) => studio.rememberModel(path),
    forgetModel: (path) => studio.forgetModel(path),
    ...(studio.pickFolder ? { pickFolder: (purpose) => studio.pickFolder!(purpose) } : {}),
    ...(studio.revealPath ? { revealPath: (path) => studio.revealPath!(path) } : {}),
  };
}

export function createApi(win: Window = window, createSocket?: SocketFactory): ClientApi {
  if (win.studio) return ipcApi(win.studio);
  const url = wsUrlFromLocation(win.location);
  if (url === null) {
    return createWsApi({
      url: '',
      fatal: 'This page has no access token in its address: open the URL that `loftq serve` printed.',
    });
  }
  return createWsApi({ url, createSocket, checkToken: () => checkToken(win) });
}

/** GET /api/token with the page's token: 204 accepted, 403 refused, anything else unknown. */
async function checkToken(win: Window): Promise<'ok' | 'rejected' | 'unreachable'> {
  const token = new URLSearchParams(win.location.search).get('token') ?? '';
  const res = await win.fetch(new URL(`/api/token?token=${encodeURIComponent(token)}`, win.location.href), { cache: 'no-store' });
  return res.status === 204 ? 'ok' : res.status === 403 ? 'rejected' : 'unreachable';
}
