// The compute entry (compute.ts) as a real child process. Electron is not available here, so
// the child is plain Node with a small shim giving it process.parentPort over Node's IPC
// channel (what a utilityProcess provides): startup flags, requests, events, a killed process
// restarted with its pending call failed, and a clean shutdown.
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelSummary } from '../api/contract';
import { makeTempDir } from '../test-support/tiny-model';
import { computeArgv } from './compute-config';
import { ComputeHost, type ComputeChild } from './compute-host';

const SHIM = `
process.parentPort = {
  on(event, listener) { if (event === 'message') process.on('message', (data) => listener({ data })); return this; },
  postMessage(message) { process.send(message); },
};
`;

let tmp: string;
let bundle: string;
const demoModel = resolve('assets/demo-model');

beforeAll(async () => {
  tmp = await makeTempDir('loftq-compute-');
  bundle = join(tmp, 'compute.cjs');
  await build({ entryPoints: ['src-main/host/compute.ts'], outfile: bundle, bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['onnxruntime-node'], logLevel: 'warning' });
  writeFileSync(join(tmp, 'parent-port-shim.cjs'), SHIM);
});

afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('the compute process', () => {
  const children: ChildProcess[] = [];
  const exits: number[] = [];
  const spawn = (): ComputeChild => {
    const child = fork(bundle, computeArgv({ runsDir: join(tmp, 'runs'), demoModel, version: '9.9.9' }), {
      execArgv: ['--require', join(tmp, 'parent-port-shim.cjs')],
      env: { ...process.env, NODE_PATH: resolve('node_modules') },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.push(child);
    child.on('error', () => {}); // writing to a killed child: its exit is what counts
    return {
      postMessage: (m) => child.send(m),
      onMessage: (l) => child.on('message', l),
      onExit: (l) =>
        child.on('exit', (code, signal) => {
          const c = code ?? (signal === 'SIGKILL' ? 137 : 128);
          exits.push(c);
          l(c);
        }),
      kill: () => void child.kill('SIGKILL'),
    };
  };
  const host = new ComputeHost({ spawn, onEvent: () => {}, log: () => {} });
  // A failed test must not leave a process behind.
  afterAll(() => children.filter((c) => c.exitCode === null && c.signalCode === null).forEach((c) => c.kill('SIGKILL')));
  const call = async <T>(method: string, ...params: unknown[]): Promise<T> => {
    const r = await host.request({ method, params });
    if (!r.ok) throw new Error(r.error.message);
    return r.result as T;
  };

  it('starts with main’s flags and serves the api', async () => {
    const info = await call<{ device: { kind: string; cuda: { available: boolean } } }>('info');
    expect(info).toEqual({
      runsDir: join(tmp, 'runs'),
      demoModel,
      demoData: { train: join(dirname(demoModel), 'demo-data', 'train.txt'), eval: join(dirname(demoModel), 'demo-data', 'eval.txt') },
      version: '9.9.9',
      transport: 'ipc',
      device: expect.objectContaining({ kind: expect.any(String), name: expect.any(String) }),
    });
    // The compute process says what `auto` runs on.
    expect(info.device.kind).toBe(info.device.cuda.available ? 'cuda' : 'cpu');
    const model = await call<ModelSummary>('inspectModel', demoModel);
    expect(model.targets.length).toBeGreaterThan(0);
    await expect(call('getRun', 'nope')).rejects.toThrow(/nope/);
  });

  it('when killed: the pending call fails clearly and a new process takes over', async () => {
    children[0].kill('SIGKILL');
    // sent before the exit is noticed: it can only be answered by the failure
    const r = await host.request({ method: 'inspectModel', params: [demoModel] });
    expect(r).toEqual({ ok: false, error: { message: 'the compute process stopped unexpectedly (exit code 137); it has been restarted, try again', user: false } });
    await expect.poll(() => children.length).toBe(2);
    expect((await call<{ version: string }>('info')).version).toBe('9.9.9');
  });

  it('shuts down on request with exit code 0', async () => {
    await host.stop(10_000);
    expect(exits).toEqual([137, 0]);
  });
});
