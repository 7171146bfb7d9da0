import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../test-support/tiny-model';
import { UserConfigStore, userConfigDir, withRecent } from './user-config';

let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-config-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('the user config store', () => {
  it('lives in $XDG_CONFIG_HOME/loftq-studio, else ~/.config/loftq-studio', () => {
    expect(userConfigDir({ XDG_CONFIG_HOME: '/x/cfg' }, 'linux')).toBe('/x/cfg/loftq-studio');
    expect(userConfigDir({}, 'linux')).toBe(join(homedir(), '.config', 'loftq-studio'));
    // A relative XDG_CONFIG_HOME is invalid by the spec and ignored.
    expect(userConfigDir({ XDG_CONFIG_HOME: 'rel' }, 'linux')).toBe(join(homedir(), '.config', 'loftq-studio'));
  });

  it('keeps the serve port and token and the recent models, readable by the user alone (0600)', async () => {
    const store = new UserConfigStore(join(tmp, 'a', 'loftq-studio'));
    expect(await store.read()).toEqual({});
    const token = 'A'.repeat(32);
    await store.update((c) => ({ ...c, serve: { port: 41234, token } }));
    await store.update((c) => ({ ...c, recent_models: withRecent(c.recent_models, '/m/one') }));
    await store.update((c) => ({ ...c, recent_models: withRecent(c.recent_models, '/m/two') }));
    await store.update((c) => ({ ...c, recent_models: withRecent(c.recent_models, '/m/one') }));
    expect(await new UserConfigStore(store.dir).read()).toEqual({ serve: { port: 41234, token }, recent_models: ['/m/one', '/m/two'] });
    expect(statSync(store.file).mode & 0o777).toBe(0o600);
    expect(statSync(store.dir).mode & 0o077).toBe(0);
  });

  it('reads a damaged file as empty and drops what it does not understand', async () => {
    const dir = join(tmp, 'b');
    mkdirSync(dir);
    const store = new UserConfigStore(dir);
    writeFileSync(store.file, '{"serve": {"port": 70000, "token": "short"}, "recent_models": ["/ok", 3, "", "a\\nb"], "other": 1}');
    expect(await store.read()).toEqual({ recent_models: ['/ok'] });
    writeFileSync(store.file, '{not json');
    expect(await store.read()).toEqual({});
    await store.update((c) => ({ ...c, recent_models: ['/new'] }));
    expect(JSON.parse(readFileSync(store.file, 'utf8'))).toEqual({ recent_models: ['/new'] });
  });

  it('applies concurrent updates one after another (none lost)', async () => {
    const store = new UserConfigStore(join(tmp, 'c'));
    await Promise.all(['/1', '/2', '/3', '/4'].map((p) => store.update((c) => ({ ...c, recent_models: withRecent(c.recent_models, p) }))));
    expect((await store.read()).recent_models?.sort()).toEqual(['/1', '/2', '/3', '/4']);
  });
});
