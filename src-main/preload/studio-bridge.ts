// What the preload exposes as window.studio: exactly the StudioApi (every method a call over
// IPC, onEvent a subscription) plus pickFolder. Built from an ipcRenderer-like object so that
// tests can pass a fake; nothing of ipcRenderer itself reaches the page.
import { API_METHODS, type ApiEvent, type PickPurpose, type StudioApi } from '../api/contract';
import { IPC, type CallResult } from '../wire/ipc-protocol';

/** The part of Electron's ipcRenderer the bridge uses. */
export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
  removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

export type StudioBridge = Required<StudioApi>;

function unwrap(reply: unknown): unknown {
  const r = reply as CallResult | null;
  if (r && typeof r === 'object' && r.ok === true) return r.result;
  if (r && typeof r === 'object' && r.ok === false) throw new Error(r.error.message);
  throw new Error('malformed reply from the app');
}

export function buildStudioBridge(ipc: IpcRendererLike): StudioBridge {
  const bridge: Record<string, unknown> = {};
  for (const method of API_METHODS) {
    bridge[method] = async (...params: unknown[]) => unwrap(await ipc.invoke(IPC.request, { method, params }));
  }
  bridge.onEvent = (listener: (event: ApiEvent) => void): (() => void) => {
    if (typeof listener !== 'function') throw new TypeError('onEvent needs a function');
    const handler = (_event: unknown, apiEvent: unknown) => listener(apiEvent as ApiEvent);
    ipc.on(IPC.event, handler);
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      ipc.removeListener(IPC.event, handler);
    };
  };
  bridge.pickFolder = async (purpose: PickPurpose) => unwrap(await ipc.invoke(IPC.pickFolder, purpose)) as string | null;
  bridge.revealPath = async (path: string) => {
    unwrap(await ipc.invoke(IPC.reveal, path));
  };
  return Object.freeze(bridge) as unknown as StudioBridge;
}
