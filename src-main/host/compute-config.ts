// What main tells the compute process at start (argv), and where the app's files are.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

export interface ComputeConfig {
  runsDir: string;
  /** The demo model's folder, null when it is missing. */
  demoModel: string | null;
  version: string;
}

export function computeArgv(c: ComputeConfig): string[] {
  return ['--runs-dir', c.runsDir, '--demo-model', c.demoModel ?? '', '--app-version', c.version];
}

/** Reads computeArgv's flags wherever they are in argv (Electron prepends its own entries). */
export function parseComputeArgv(argv: readonly string[]): ComputeConfig {
  const { values } = parseArgs({
    args: [...argv],
    options: { 'runs-dir': { type: 'string' }, 'demo-model': { type: 'string' }, 'app-version': { type: 'string' } },
    strict: false,
    allowPositionals: true,
  });
  const runsDir = values['runs-dir'];
  if (typeof runsDir !== 'string' || runsDir === '') throw new Error('the compute process needs --runs-dir');
  const demo = values['demo-model'];
  const version = values['app-version'];
  return { runsDir, demoModel: typeof demo === 'string' && demo !== '' ? demo : null, version: typeof version === 'string' ? version : '0.0.0' };
}

export interface AppFacts {
  isPackaged: boolean;
  /** process.resourcesPath (packaged: where extraResources land). */
  resourcesPath: string;
  /** app.getAppPath() (not packaged: normally the repository root). */
  appPath: string;
  /** The main bundle's folder (out/main): the repository is two levels up when not packaged. */
  mainDir: string;
  /** app.getPath('userData'). */
  userData: string;
  /** LOFTQ_RUNS_DIR, to point the app at another runs folder (tests, the CLI's folder). */
  runsDirOverride?: string;
}

export function appPaths(f: AppFacts): { runsDir: string; demoModel: string | null } {
  const runsDir = f.runsDirOverride && f.runsDirOverride.trim() !== '' ? resolve(f.runsDirOverride) : join(f.userData, 'runs');
  const bases = f.isPackaged ? [f.resourcesPath] : [f.appPath, join(f.mainDir, '..', '..')];
  const demo = bases.map((b) => join(b, 'assets', 'demo-model')).find((d) => existsSync(join(d, 'config.json')));
  return { runsDir, demoModel: demo ?? null };
}
