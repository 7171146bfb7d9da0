// Files that ship with the project (the demo model, the built dashboard), found from
// wherever the CLI runs: the bundle in dist/ or the sources under src-main/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function findUp(relative: string, marker: string): string | null {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, relative);
    if (existsSync(join(candidate, marker))) return candidate;
    dir = dirname(dir);
  }
  return null;
}

export const demoModelPath = (): string | null => findUp(join('assets', 'demo-model'), 'config.json');
export const rendererPath = (): string | null => findUp(join('out', 'renderer'), 'index.html');
