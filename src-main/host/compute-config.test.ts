// The compute process's start flags and the app's paths.
import { mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../test-support/tiny-model';
import { appPaths, computeArgv, parseComputeArgv } from './compute-config';

describe('compute argv', () => {
  it('round-trips through the flags, wherever Electron puts them', () => {
    const config = { runsDir: '/home/u/.config/LoftQ Studio/runs', demoModel: '/opt/app/resources/assets/demo-model', version: '0.1.0' };
    const argv = computeArgv(config);
    expect(parseComputeArgv(argv)).toEqual(config);
    expect(parseComputeArgv(['/usr/lib/electron', '--type=utility', '/app/out/main/compute.cjs', ...argv])).toEqual(config);
  });

  it('keeps an absent demo model absent and requires the runs folder', () => {
    expect(parseComputeArgv(computeArgv({ runsDir: '/r', demoModel: null, version: '1' })).demoModel).toBeNull();
    expect(() => parseComputeArgv(['--demo-model', '/d'])).toThrow(/--runs-dir/);
  });
});

describe('appPaths', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await makeTempDir('loftq-paths-');
    for (const base of ['resources', 'repo']) {
      mkdirSync(join(tmp, base, 'assets', 'demo-model'), { recursive: true });
      writeFileSync(join(tmp, base, 'assets', 'demo-model', 'config.json'), '{}');
    }
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  const facts = () => ({ isPackaged: true, resourcesPath: join(tmp, 'resources'), appPath: join(tmp, 'resources', 'app.asar'), userData: join(tmp, 'user'), mainDir: join(tmp, 'resources', 'app.asar', 'out', 'main') });

  it('packaged: runs in userData, the demo model from the resources', () => {
    expect(appPaths(facts())).toEqual({ runsDir: join(tmp, 'user', 'runs'), demoModel: join(tmp, 'resources', 'assets', 'demo-model') });
  });

  it('development: the demo model from the repository (app path, or two levels above out/main)', () => {
    const dev = { ...facts(), isPackaged: false, appPath: join(tmp, 'repo') };
    expect(appPaths(dev).demoModel).toBe(join(tmp, 'repo', 'assets', 'demo-model'));
    expect(appPaths({ ...dev, appPath: join(tmp, 'repo', 'out', 'main'), mainDir: join(tmp, 'repo', 'out', 'main') }).demoModel).toBe(join(tmp, 'repo', 'assets', 'demo-model'));
    expect(appPaths({ ...dev, appPath: join(tmp, 'nowhere'), mainDir: join(tmp, 'nowhere', 'out', 'main') }).demoModel).toBeNull();
  });

  it('LOFTQ_RUNS_DIR overrides the runs folder', () => {
    expect(appPaths({ ...facts(), runsDirOverride: 'some/runs' }).runsDir).toBe(resolve('some/runs'));
    expect(appPaths({ ...facts(), runsDirOverride: '  ' }).runsDir).toBe(join(tmp, 'user', 'runs'));
  });
});
