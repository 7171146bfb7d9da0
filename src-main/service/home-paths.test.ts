// Paths typed in the app may start with ~ (the user's home folder), as in a shell.
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, writeTinyModel } from '../test-support/tiny-model';
import { byteLevelBpe, writeTokenizer } from '../test-support/tokenizer-fixtures';
import { expandHome, StudioService } from './studio-service';

let tmp: string;
let home: string | undefined;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-home-');
  home = process.env.HOME;
  process.env.HOME = tmp; // os.homedir() follows $HOME on POSIX
  await writeTinyModel(join(tmp, 'models', 'tiny'), { vocab: 272 });
  await writeTokenizer(join(tmp, 'models', 'tiny'), byteLevelBpe());
});
afterAll(async () => {
  process.env.HOME = home;
  await rm(tmp, { recursive: true, force: true });
});

describe('~ in typed paths', () => {
  it('expands ~ and ~/… only at the start', () => {
    expect(homedir()).toBe(tmp);
    expect(expandHome('~')).toBe(tmp);
    expect(expandHome('~/models/tiny')).toBe(join(tmp, 'models', 'tiny'));
    expect(expandHome('/data/~/x')).toBe('/data/~/x');
    expect(expandHome('~other/x')).toBe('~other/x');
  });

  it('opens a model given as ~/…', async () => {
    const service = new StudioService({ runsDir: join(tmp, 'runs'), demoModel: null, version: 'test', transport: 'websocket', throttleMs: 0 });
    try {
      const summary = await service.inspectModel('~/models/tiny');
      expect(summary.path).toBe(join(tmp, 'models', 'tiny'));
    } finally {
      await service.close();
    }
  });
});
