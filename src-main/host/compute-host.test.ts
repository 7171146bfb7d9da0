// ComputeHost against a fake compute process: validation before forwarding, id matching,
// events, crash handling (pending calls fail, jobs reported failed, restart, crash loops),
// and shutdown.
import { describe, expect, it } from 'vitest';
import type { ApiEvent, JobInfo, WireMessage } from '../api/contract';
import { MAX_REQUEST_BYTES } from '../wire/rpc';
import { ComputeHost, SHUTDOWN_MESSAGE, type ComputeChild } from './compute-host';

class FakeChild implements ComputeChild {
  readonly sent: string[] = [];
  killed = 0;
  private messageListeners: Array<(m: unknown) => void> = [];
  private exitListeners: Array<(code: number) => void> = [];

  postMessage(message: string): void {
    this.sent.push(message);
  }
  onMessage(listener: (m: unknown) => void): void {
    this.messageListeners.push(listener);
  }
  onExit(listener: (code: number) => void): void {
    this.exitListeners.push(listener);
  }
  kill(): void {
    this.killed++;
  }
  /** The requests it received, parsed. */
  requests(): Array<Extract<WireMessage, { kind: 'request' }>> {
    return this.sent.filter((s) => s !== SHUTDOWN_MESSAGE).map((s) => JSON.parse(s) as Extract<WireMessage, { kind: 'request' }>);
  }
  emit(message: unknown): void {
    for (const l of this.messageListeners) l(typeof message === 'string' ? message : JSON.stringify(message));
  }
  exit(code: number): void {
    for (const l of this.exitListeners) l(code);
  }
}

function setup(options: { maxCrashes?: number; crashWindowMs?: number } = {}) {
  const children: FakeChild[] = [];
  const events: ApiEvent[] = [];
  const logs: string[] = [];
  let now = 1_000_000;
  const host = new ComputeHost({
    spawn: () => {
      const c = new FakeChild();
      children.push(c);
      return c;
    },
    onEvent: (e) => events.push(e),
    log: (l) => logs.push(l),
    now: () => now,
    ...options,
  });
  return { host, children, events, logs, advance: (ms: number) => (now += ms) };
}

const job = (id: string, state: JobInfo['state']): JobInfo => ({ id, kind: 'quantize', state, target: '/runs/a', progress: 0.5, label: 'q_proj', started: '2026-01-01T00:00:00.000Z' });

describe('ComputeHost', () => {
  it('starts the process lazily and once', () => {
    const { host, children } = setup();
    expect(children).toHaveLength(0);
    host.start();
    host.start();
    expect(children).toHaveLength(1);
    expect(host.running).toBe(true);
  });

  it('forwards valid calls with fresh ids and matches answers by id, in any order', async () => {
    const { host, children } = setup();
    const a = host.request({ method: 'getRun', params: ['a'] });
    const b = host.request({ method: 'listRuns', params: [] });
    const [child] = children;
    const [ra, rb] = child.requests();
    expect(ra).toEqual({ kind: 'request', id: ra.id, method: 'getRun', params: ['a'] });
    expect(rb.method).toBe('listRuns');
    expect(ra.id).not.toBe(rb.id);
    child.emit({ kind: 'response', id: rb.id, ok: true, result: [1, 2] });
    child.emit({ kind: 'response', id: 9999, ok: true, result: 'stray' }); // unknown id: ignored
    child.emit({ kind: 'response', id: ra.id, ok: false, error: { message: 'no run a', user: true } });
    child.emit({ kind: 'response', id: ra.id, ok: true, result: 'late duplicate' }); // already answered
    await expect(b).resolves.toEqual({ ok: true, result: [1, 2] });
    await expect(a).resolves.toEqual({ ok: false, error: { message: 'no run a', user: true } });
  });

  it('refuses malformed payloads without bothering the compute process', async () => {
    const { host, children } = setup();
    const bad: unknown[] = [
      null,
      'listRuns',
      [],
      { method: 'onEvent', params: [] },
      { method: 'pickFolder', params: ['model'] },
      { method: 'constructor', params: [] },
      { method: '__proto__', params: [] },
      { method: 'getRun', params: [] },
      { method: 'getRun', params: [42] },
      { method: 'getRun' },
      { method: 'startQuantize', params: [['not', 'an', 'object']] },
      { method: 'startQuantize', params: [null] },
      { method: 'renameRun', params: ['a', 'b', 'c'] },
    ];
    for (const payload of bad) {
      const r = await host.request(payload);
      expect(r.ok, JSON.stringify(payload)).toBe(false);
      if (!r.ok) expect(r.error.user).toBe(true);
    }
    expect(children).toHaveLength(0);
    const big = await host.request({ method: 'inspectModel', params: ['x'.repeat(MAX_REQUEST_BYTES)] });
    expect(big).toEqual({ ok: false, error: { message: 'inspectModel: request too large', user: true } });
    expect(children.flatMap((c) => c.requests())).toHaveLength(0);
  });

  it('passes events on and ignores garbage from the process', () => {
    const { host, children, events } = setup();
    host.start();
    const [child] = children;
    child.emit({ kind: 'event', event: { type: 'runs-changed' } });
    child.emit('not json');
    child.emit({ kind: 'event' });
    child.emit(null);
    for (const l of [42, { kind: 'request', id: 1, method: 'info', params: [] }]) child.emit(l);
    expect(events).toEqual([{ type: 'runs-changed' }]);
  });

  it('on a crash: fails pending calls, reports unfinished jobs failed, restarts', async () => {
    const { host, children, events, logs } = setup();
    const pending = host.request({ method: 'listJobs', params: [] });
    const [first] = children;
    first.emit({ kind: 'event', event: { type: 'job', job: job('job-1', 'running') } });
    first.emit({ kind: 'event', event: { type: 'job', job: job('job-2', 'running') } });
    first.emit({ kind: 'event', event: { type: 'job', job: job('job-2', 'done') } });
    events.length = 0;
    first.exit(134);
    const r = await pending;
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.message).toMatch(/compute process stopped unexpectedly \(exit code 134\); it has been restarted, try again/);
      expect(r.error.user).toBe(false);
    }
    expect(events).toHaveLength(2);
    const failed = events[0];
    expect(failed.type).toBe('job');
    if (failed.type === 'job') {
      expect(failed.job.id).toBe('job-1');
      expect(failed.job.state).toBe('failed');
      expect(failed.job.error).toMatch(/exit code 134/);
      expect(failed.job.finished).toBeDefined();
    }
    expect(events[1]).toEqual({ type: 'runs-changed' });
    expect(logs[0]).toMatch(/restarting/);
    // restarted at once; the new process serves the next call
    expect(children).toHaveLength(2);
    const next = host.request({ method: 'info', params: [] });
    const [req] = children[1].requests();
    children[1].emit({ kind: 'response', id: req.id, ok: true, result: { ok: 1 } });
    await expect(next).resolves.toEqual({ ok: true, result: { ok: 1 } });
    // the dead process can no longer answer or report
    first.emit({ kind: 'event', event: { type: 'runs-changed' } });
    first.exit(1);
    expect(events).toHaveLength(2);
    expect(children).toHaveLength(2);
  });

  it('stops restarting eagerly when the process keeps crashing, and restarts on the next call', async () => {
    const { host, children, logs, advance } = setup({ maxCrashes: 2, crashWindowMs: 10_000 });
    host.start();
    children[0].exit(1);
    advance(100);
    children[1].exit(1);
    advance(100);
    expect(children).toHaveLength(3);
    const pending = host.request({ method: 'info', params: [] });
    children[2].exit(1);
    expect(children).toHaveLength(3); // third crash within the window: no eager restart
    const r = await pending;
    expect(!r.ok && r.error.message).toMatch(/it will restart with the next request/);
    expect(logs.at(-1)).toMatch(/keeps crashing/);
    void host.request({ method: 'info', params: [] });
    expect(children).toHaveLength(4);
    // crashes outside the window are forgotten
    advance(60_000);
    children[3].exit(1);
    expect(children).toHaveLength(5);
  });

  it('a process that cannot be reached fails the call, not the host', async () => {
    const { host, children } = setup();
    host.start();
    children[0].postMessage = () => {
      throw new Error('process gone');
    };
    await expect(host.request({ method: 'info', params: [] })).resolves.toEqual({
      ok: false,
      error: { message: 'the compute process cannot be reached: process gone', user: false },
    });
  });

  it('stop() asks the process to shut down, then fails what is pending and refuses new calls', async () => {
    const { host, children } = setup();
    const pending = host.request({ method: 'listRuns', params: [] });
    const stopped = host.stop(10_000);
    const [child] = children;
    expect(child.sent.at(-1)).toBe(SHUTDOWN_MESSAGE);
    child.exit(0);
    await stopped;
    expect(child.killed).toBe(0);
    await expect(pending).resolves.toEqual({ ok: false, error: { message: 'the app is closing', user: false } });
    await expect(host.request({ method: 'info', params: [] })).resolves.toEqual({ ok: false, error: { message: 'the app is closing', user: false } });
    expect(children).toHaveLength(1); // no restart while closing
  });

  it('stop() kills a process that does not exit in time', async () => {
    const { host, children } = setup();
    host.start();
    await host.stop(20);
    expect(children[0].killed).toBe(1);
  });

  it('stop() without a process returns at once', async () => {
    const { host, children } = setup();
    await host.stop(10_000);
    expect(children).toHaveLength(0);
  });
});
