import { describe, expect, it, vi } from 'vitest';
import { ChosenPaths } from './chosen-paths';
import { ComputeHost } from './compute-host';

describe('exports from the app write only where the user chose', () => {
  it('lets startExport through only for a folder picked in the export dialog', () => {
    const chosen = new ChosenPaths();
    expect(chosen.check('startExport', [{ run: 'r', format: 'peft', out: '/home/u/out' }])).toMatch(/choose the export folder in the dialog/);
    chosen.remember('export', '/home/u/out');
    expect(chosen.check('startExport', [{ run: 'r', format: 'peft', out: '/home/u/out' }])).toBeNull();
    expect(chosen.check('startExport', [{ run: 'r', format: 'peft', out: '/home/u/out/../elsewhere' }])).toMatch(/dialog/);
    // A folder picked for another purpose does not count; other calls are not affected.
    chosen.remember('model', '/home/u/model');
    expect(chosen.check('startExport', [{ run: 'r', format: 'peft', out: '/home/u/model' }])).toMatch(/dialog/);
    expect(chosen.check('listRuns', [])).toBeNull();
  });

  it('the compute host refuses a guarded call without forwarding it', async () => {
    const spawn = vi.fn();
    const host = new ComputeHost({ spawn, onEvent: () => undefined, guard: (m) => (m === 'startExport' ? 'no' : null) });
    const r = await host.request({ method: 'startExport', params: [{ run: 'x', format: 'peft', out: '/tmp/x' }] });
    expect(r).toEqual({ ok: false, error: { message: 'no', user: true } });
    expect(spawn).not.toHaveBeenCalled();
  });
});
