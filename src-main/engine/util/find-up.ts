// Files that ship with the project (the demo model, the built dashboard, the native addon),
// found from wherever the code runs: the bundle in dist/, out/main, or the sources.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** This module's folder: __dirname in the CommonJS bundles, import.meta.url when run as ESM (tsx). */
function hereDir(): string {
  if (typeof __dirname !== 'undefined') return __dirname;
  return dirname(fileURLToPath(import.meta.url));
}

/** `relative` in this module's folder or one of its ancestors, if it holds `marker`. */
export function findUp(relative: string, marker: string, levels = 6): string | null {
  let dir = hereDir();
  for (let i = 0; i < levels; i++) {
    const candidate = join(dir, relative);
    if (existsSync(join(candidate, marker))) return candidate;
    dir = dirname(dir);
  }
  return null;
}
