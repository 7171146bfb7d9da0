// What a second Ctrl-C does before the process exits at once: each job still running leaves
// a truthful state behind, synchronously (there is no time for anything asynchronous): its run
// marked cancelled and its temporary and partial files removed.
import { readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const active = new Map<number, () => void>();
let nextId = 1;

/** Registers a job's synchronous clean-up; returns the function that unregisters it. */
export function onAbandon(cleanup: () => void): () => void {
  const id = nextId++;
  active.set(id, cleanup);
  return () => active.delete(id);
}

/** Runs every registered clean-up (each best effort), for a process about to exit. */
export function abandonAll(): void {
  for (const cleanup of active.values()) {
    try {
      cleanup();
    } catch {
      // best effort: the process is exiting either way
    }
  }
  active.clear();
}

/** Writes JSON atomically without awaiting anything (temp file + rename). */
export function writeJsonSync(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid.toString(16)}abandon`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

/** Removes the temporary files of atomic writes below dir, synchronously. */
export function removeTemporariesSync(dir: string, depth = 3): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (/\.tmp-[0-9a-f]{6,}/.test(e.name) || e.name === '.codes.scratch') rmSync(path, { recursive: true, force: true });
    else if (e.isDirectory() && depth > 0) removeTemporariesSync(path, depth - 1);
  }
}
