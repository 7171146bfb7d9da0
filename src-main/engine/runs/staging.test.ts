// Staging folders left by killed processes are removed by the next command writing beside them;
// those of live processes and anything not provably ours stay (issue 23, item 6).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../test-support/tiny-model';
import { finishStaging, makeStagingDir, removeDeadStaging } from './staging';

let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-staging-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The pid of a process that has already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

function fakeStaging(parent: string, name: string, owner: Record<string, unknown> | null, files = 1): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  if (owner) writeFileSync(join(dir, '.loftq-staging'), JSON.stringify(owner));
  for (let i = 0; i < files; i++) writeFileSync(join(dir, `part-${i}.safetensors`), 'x'.repeat(1000));
  return dir;
}

describe('staging folders', () => {
  it('removes only ours whose owner is dead', async () => {
    const parent = join(tmp, 'exports');
    const format = 'loftq-staging/1';
    const dead = fakeStaging(parent, '.out.tmp-0123abcd', { format, pid: deadPid(), host: hostname() });
    const live = fakeStaging(parent, '.out.tmp-4567abcd', { format, pid: process.pid, host: hostname() });
    const elsewhere = fakeStaging(parent, '.out.tmp-89abcdef', { format, pid: deadPid(), host: `${hostname()}-other` });
    const foreign = fakeStaging(parent, '.out.tmp-deadbeef', null);
    const wrongFormat = fakeStaging(parent, '.out.tmp-feedface', { format: 'something', pid: deadPid(), host: hostname() });
    const notOurName = fakeStaging(parent, '.out.tmp-zz', { format, pid: deadPid(), host: hostname() });
    const emptyOld = join(parent, '.old.tmp-00000000');
    mkdirSync(emptyOld);
    utimesSync(emptyOld, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    const emptyNew = join(parent, '.new.tmp-11111111');
    mkdirSync(emptyNew);

    expect(await removeDeadStaging(parent)).toBe(2);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(emptyOld)).toBe(false);
    for (const kept of [live, elsewhere, foreign, wrongFormat, notOurName, emptyNew]) expect(existsSync(kept), kept).toBe(true);
  });

  it('makes a hidden staging folder beside the output, owned by this process, and drops the owner file when done', async () => {
    const out = join(tmp, 'made', 'export');
    const staging = await makeStagingDir(out);
    expect(staging).toMatch(/made[/\\]\.export\.tmp-[0-9a-f]{8}$/);
    expect(await readdir(staging)).toEqual(['.loftq-staging']);
    // Alive: kept.
    expect(await removeDeadStaging(join(tmp, 'made'))).toBe(0);
    await finishStaging(staging);
    expect(await readdir(staging)).toEqual([]);
  });
});
