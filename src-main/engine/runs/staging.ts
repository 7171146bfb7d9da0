// Staging folders: an export (or any folder output) is assembled under a hidden temporary name
// beside its destination and renamed into place. Each one carries an owner file naming the
// process that made it, so that when that process is killed (SIGKILL, a crash) the next
// command writing into the same folder recognises the leftover as ours and its owner as dead,
// and removes it; a staging folder of a live process, or anything not named and marked like
// ours, is never touched.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { writeBytesAtomic } from '../io/atomic-write';
import { fsError } from '../io/fs-util';
import { readJsonObject } from '../io/json-file';
import { currentProcess, isGone } from './interrupted';

const OWNER_FILE = '.loftq-staging';
const OWNER_FORMAT = 'loftq-staging/1';
/** `.NAME.tmp-XXXXXXXX`: the destination's name, hidden, with 8 hex digits. */
const STAGING_NAME = /^\..+\.tmp-[0-9a-f]{8}$/;
/** An empty staging folder (its owner killed between mkdir and the owner file) older than this is left over. */
const EMPTY_GRACE_MS = 60_000;

/** Creates the staging folder of `out` (beside it) with its owner file; returns its path. */
export async function makeStagingDir(out: string): Promise<string> {
  const staging = join(dirname(out), `.${basename(out)}.tmp-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(staging, { recursive: true });
  } catch (e) {
    throw fsError(e, dirname(out), 'write');
  }
  try {
    await writeBytesAtomic(join(staging, OWNER_FILE), JSON.stringify({ format: OWNER_FORMAT, ...currentProcess(), created: new Date().toISOString() }) + '\n');
  } catch (e) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  return staging;
}

/** Removes the owner file before the folder is renamed into place (the output does not carry it). */
export async function finishStaging(staging: string): Promise<void> {
  await rm(join(staging, OWNER_FILE), { force: true });
}

/** The folder's name is ours and its owner file says a process on this machine that is gone. */
async function isDeadStaging(path: string): Promise<boolean> {
  const owner = await readJsonObject(join(path, OWNER_FILE), { optional: true, maxBytes: 4096 }).catch(() => undefined);
  if (owner === undefined) return false; // unreadable: not provably ours
  if (owner !== null) return owner.format === OWNER_FORMAT && isGone(owner);
  // No owner file: only an empty folder, old enough that no live process is about to fill it.
  const entries = await readdir(path).catch(() => null);
  const st = await stat(path).catch(() => null);
  return entries !== null && entries.length === 0 && st !== null && Date.now() - st.mtimeMs > EMPTY_GRACE_MS;
}

/** Removes the staging folders in `dir` left by killed processes; returns how many. */
export async function removeDeadStaging(dir: string): Promise<number> {
  let removed = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isDirectory() || !STAGING_NAME.test(e.name)) continue;
    const path = join(dir, e.name);
    if (!(await isDeadStaging(path))) continue;
    const owned = (await readdir(path).catch(() => [])).length > 0;
    await (owned ? rm(path, { recursive: true, force: true }) : rmdir(path)).catch(() => undefined);
    removed++;
  }
  return removed;
}
