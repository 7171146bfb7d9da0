// Runs-folder confinement through real paths (issue 12): a request that names a run resolves
// every symlink and must land inside the runs folder; nothing outside it is read, renamed or
// deleted, whatever the name or the links say.
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../test-support/tiny-model';
import { StudioService } from './studio-service';

let tmp: string;
let service: StudioService;
let outside: string;

beforeAll(async () => {
  tmp = await makeTempDir('loftq-confine-');
  outside = join(tmp, 'outside');
  // Something that looks like a run, outside the runs folder, reachable through a link.
  mkdirSync(join(outside, 'victim'), { recursive: true });
  writeFileSync(join(outside, 'victim', 'run.json'), JSON.stringify({ format: 'loftq-run/1', kind: 'quantize', status: 'done', config: {}, model: {}, created: '2026-01-01', timings: {} }));
  service = new StudioService({ runsDir: join(tmp, 'runs'), demoModel: null, version: 'test', transport: 'websocket', throttleMs: 0 });
  symlinkSync(outside, join(tmp, 'runs', 'linkdir'));
  symlinkSync(join(outside, 'victim'), join(tmp, 'runs', 'victim-link'));
});

afterAll(async () => {
  await service.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('runs-folder confinement', () => {
  it('delete, get, rename, export and eval refuse a run reached through a link to outside', async () => {
    for (const name of ['linkdir/victim', 'victim-link']) {
      await expect(service.deleteRun(name)).rejects.toThrow(/outside the runs folder/);
      await expect(service.getRun(name)).rejects.toThrow(/outside the runs folder/);
      await expect(service.renameRun(name, 'taken')).rejects.toThrow(/outside the runs folder/);
      await expect(service.startExport({ run: name, format: 'peft', out: join(tmp, 'never') })).rejects.toThrow(/outside the runs folder/);
      await expect(service.startEval({ target: name, data: join(tmp, 'x.txt') })).rejects.toThrow(/outside the runs folder/);
    }
    expect(existsSync(join(outside, 'victim', 'run.json'))).toBe(true);
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });

  it('refuses names that climb out, and the runs folder itself', async () => {
    await expect(service.getRun('../outside/victim')).rejects.toThrow(/not inside the runs folder/);
    await expect(service.startExport({ run: '../outside/victim', format: 'peft', out: join(tmp, 'never') })).rejects.toThrow(/not inside the runs folder/);
    await expect(service.deleteRun(join(outside, 'victim'))).rejects.toThrow(/not inside the runs folder/);
    await expect(service.deleteRun('.')).rejects.toThrow(/not inside the runs folder/);
    expect(existsSync(join(outside, 'victim'))).toBe(true);
  });

  it('keeps a newline in a name on one line of the message', async () => {
    const e = await service.getRun('a\nb/../../../etc').catch((x: Error) => x);
    expect((e as Error).message).not.toMatch(/\n/);
  });
});
