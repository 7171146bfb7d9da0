// window.studio as the preload builds it, over a fake ipcRenderer: exactly the StudioApi
// surface, calls as invokes, errors unwrapped, onEvent unsubscribing exactly its listener.
import { describe, expect, it } from 'vitest';
import { API_METHODS, type ApiEvent, type StudioApi } from '../api/contract';
import { IPC, type CallResult } from '../wire/ipc-protocol';
import { buildStudioBridge, type IpcRendererLike } from './studio-bridge';

type Listener = (event: unknown, ...args: unknown[]) => void;

class FakeIpc implements IpcRendererLike {
  readonly invoked: Array<{ channel: string; args: unknown[] }> = [];
  readonly listeners = new Map<string, Listener[]>();
  reply: (channel: string, ...args: unknown[]) => unknown = () => ({ ok: true, result: null });

  async invoke(channel: string, ...args: unknown[]): Promise<unknown> {
    this.invoked.push({ channel, args });
    return this.reply(channel, ...args);
  }
  on(channel: string, listener: Listener): void {
    this.listeners.set(channel, [...(this.listeners.get(channel) ?? []), listener]);
  }
  removeListener(channel: string, listener: Listener): void {
    const list = this.listeners.get(channel) ?? [];
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  }
  send(channel: string, payload: unknown): void {
    for (const l of [...(this.listeners.get(channel) ?? [])]) l({ sender: 'the ipcRenderer itself' }, payload);
  }
}

/** Every StudioApi member, spelled out: compiling fails if the contract gains one. */
const STUDIO_API_KEYS = {
  info: true,
  inspectModel: true,
  listRuns: true,
  getRun: true,
  renameRun: true,
  deleteRun: true,
  startQuantize: true,
  startExport: true,
  startEval: true,
  startTrain: true,
  startProfile: true,
  getProfile: true,
  cancelJob: true,
  listJobs: true,
  recentModels: true,
  rememberModel: true,
  forgetModel: true,
  onEvent: true,
  pickFolder: true,
  revealPath: true,
} satisfies Record<keyof StudioApi, true>;

describe('buildStudioBridge', () => {
  it('exposes exactly the StudioApi members, all functions, frozen', () => {
    const bridge = buildStudioBridge(new FakeIpc());
    expect(Object.keys(bridge).sort()).toEqual(Object.keys(STUDIO_API_KEYS).sort());
    expect(Object.keys(bridge).sort()).toEqual([...API_METHODS, 'onEvent', 'pickFolder', 'revealPath'].sort());
    for (const value of Object.values(bridge)) expect(typeof value).toBe('function');
    expect(Object.isFrozen(bridge)).toBe(true);
    expect('invoke' in bridge || 'on' in bridge || 'send' in bridge).toBe(false);
  });

  it('turns each method into one invoke on studio:request and unwraps the answer', async () => {
    const ipc = new FakeIpc();
    ipc.reply = (_channel, payload) => ({ ok: true, result: { echo: payload } }) satisfies CallResult;
    const bridge = buildStudioBridge(ipc);
    await expect(bridge.renameRun('runs/a', 'b')).resolves.toEqual({ echo: { method: 'renameRun', params: ['runs/a', 'b'] } });
    await bridge.listRuns();
    await bridge.startQuantize({ name: 'x' } as never);
    expect(ipc.invoked).toEqual([
      { channel: IPC.request, args: [{ method: 'renameRun', params: ['runs/a', 'b'] }] },
      { channel: IPC.request, args: [{ method: 'listRuns', params: [] }] },
      { channel: IPC.request, args: [{ method: 'startQuantize', params: [{ name: 'x' }] }] },
    ]);
  });

  it('rejects with the engine message on failure and on a malformed reply', async () => {
    const ipc = new FakeIpc();
    ipc.reply = () => ({ ok: false, error: { message: 'a run named b already exists', user: true } }) satisfies CallResult;
    const bridge = buildStudioBridge(ipc);
    await expect(bridge.renameRun('a', 'b')).rejects.toThrow(/^a run named b already exists$/);
    ipc.reply = () => undefined;
    await expect(bridge.info()).rejects.toThrow(/malformed reply/);
  });

  it('revealPath invokes its own channel', async () => {
    const ipc = new FakeIpc();
    ipc.reply = () => ({ ok: true, result: null });
    const bridge = buildStudioBridge(ipc);
    await bridge.revealPath('/runs/a');
    expect(ipc.invoked).toEqual([{ channel: IPC.reveal, args: ['/runs/a'] }]);
  });

  it('pickFolder invokes its own channel', async () => {
    const ipc = new FakeIpc();
    ipc.reply = (channel, purpose) => ({ ok: true, result: channel === IPC.pickFolder ? `/picked/${String(purpose)}` : null });
    const bridge = buildStudioBridge(ipc);
    await expect(bridge.pickFolder('export')).resolves.toBe('/picked/export');
    expect(ipc.invoked).toEqual([{ channel: IPC.pickFolder, args: ['export'] }]);
  });

  it('onEvent passes only the event (never the IPC event) and unsubscribes exactly its listener', () => {
    const ipc = new FakeIpc();
    const bridge = buildStudioBridge(ipc);
    const a: unknown[][] = [];
    const b: unknown[][] = [];
    const offA = bridge.onEvent((...args) => a.push(args));
    const offB = bridge.onEvent((...args) => b.push(args));
    const event: ApiEvent = { type: 'runs-changed' };
    ipc.send(IPC.event, event);
    expect(a).toEqual([[event]]);
    expect(b).toEqual([[event]]);
    offA();
    offA(); // twice: still removes nothing else
    ipc.send(IPC.event, { type: 'open-model', path: '/m' });
    expect(a).toHaveLength(1);
    expect(b).toEqual([[event], [{ type: 'open-model', path: '/m' }]]);
    expect(ipc.listeners.get(IPC.event)).toHaveLength(1);
    offB();
    expect(ipc.listeners.get(IPC.event)).toHaveLength(0);
    expect(() => bridge.onEvent('not a function' as never)).toThrow(TypeError);
  });
});
