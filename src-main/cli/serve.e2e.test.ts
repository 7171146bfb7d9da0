// `loftq serve` across restarts: the port and token are kept in the user's config folder
// (mode 0600), so a restart comes back at the same address; --port and --new-token change
// them; a kept port that another program holds is refused in one line that says so.
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../test-support/cli';
import { makeTempDir } from '../test-support/tiny-model';

let tmp: string;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-serve-keep-');
  env = { ...process.env, XDG_CONFIG_HOME: join(tmp, 'config') };
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Served {
  child: ChildProcess;
  url: string;
  out: string;
}

/** Starts `loftq serve ARGS`; resolves with its URL, or rejects with what it printed when it exits first. */
function serve(...args: string[]): Promise<Served> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--runs', join(tmp, 'runs'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(out);
      if (m && /Press Ctrl-C/.test(out)) ok({ child, url: m[1], out });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => fail(Object.assign(new Error(`serve exited with ${code}`), { out, code })));
  });
}

async function stop(s: Served): Promise<void> {
  s.child.kill('SIGINT');
  await new Promise((r) => s.child.once('exit', r));
}

describe('loftq serve keeps its address', () => {
  it('comes back on the same port with the same token; --new-token and --port change them', async () => {
    const first = await serve();
    expect(first.out).toMatch(/port and token kept in .*loftq-studio\/config\.json/);
    const file = join(tmp, 'config', 'loftq-studio', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await stop(first);

    const second = await serve();
    expect(second.url).toBe(first.url);
    // The page's token check answers yes: an open tab reconnects by itself.
    const tokenCheck = new URL(second.url);
    expect((await fetch(`${tokenCheck.origin}/api/token?token=${tokenCheck.searchParams.get('token')}`)).status).toBe(204);
    await stop(second);

    const renewed = await serve('--new-token');
    expect(new URL(renewed.url).port).toBe(new URL(first.url).port);
    expect(new URL(renewed.url).searchParams.get('token')).not.toBe(new URL(first.url).searchParams.get('token'));
    await stop(renewed);

    const moved = await serve('--port', '0');
    expect(new URL(moved.url).port).not.toBe('');
    await stop(moved);
    const again = await serve();
    expect(again.url).toBe(moved.url); // the new port and the renewed token are what is kept now
    await stop(again);
  }, 60_000);

  it('refuses a kept port that another program holds, in one line that says what to do', async () => {
    const holder = createServer();
    const s = await serve();
    const port = Number(new URL(s.url).port);
    await stop(s);
    await new Promise<void>((done) => holder.listen(port, '127.0.0.1', done));
    try {
      const err = (await serve().then(
        (x) => {
          x.child.kill();
          throw new Error('it started');
        },
        (e: { out: string; code: number }) => e,
      )) as { out: string; code: number };
      expect(err.code).toBe(1);
      expect(err.out.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^loftq: port ${port} \\(kept from the last start in .*config\\.json\\) is in use: is LoftQ Studio already running\\? --port N chooses another`))]);
    } finally {
      await new Promise((done) => holder.close(done));
    }
  }, 60_000);
});
