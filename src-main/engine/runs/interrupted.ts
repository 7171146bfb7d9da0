// A run whose process died (SIGKILL, a crash, power loss) must not stay `running` forever:
// run.json names the process that runs it, and whoever reads the run next on the same machine
// and finds that process gone marks the run (or its training) failed as interrupted and
// removes the temporary files it left behind.
import { readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** Who runs a job: recorded in run.json while it runs. */
export interface RunProcess {
  pid: number;
  host: string;
}

export function currentProcess(): RunProcess {
  return { pid: process.pid, host: hostname() };
}

/** True when `p` ran on this machine and is no longer alive. */
export function isGone(p: unknown): boolean {
  if (typeof p !== 'object' || p === null) return false;
  const { pid, host } = p as Partial<RunProcess>;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0 || host !== hostname()) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    // EPERM: alive, owned by someone else.
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Temporary files and folders of atomic writes (`name.tmp-<hex>`, `.name.tmp-<hex>`), recursively. */
export async function removeTemporaries(dir: string, depth = 3): Promise<number> {
  let removed = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (/\.tmp-[0-9a-f]{6,}$/.test(e.name) || e.name === '.codes.scratch') {
      await rm(path, { recursive: true, force: true });
      removed++;
    } else if (e.isDirectory() && depth > 0) {
      removed += await removeTemporaries(path, depth - 1);
    }
  }
  return removed;
}

export function interruptedMessage(p: unknown): string {
  const pid = (p as Partial<RunProcess> | null)?.pid;
  return `interrupted: the process running it${pid ? ` (pid ${pid})` : ''} ended without finishing (killed, crashed or the machine stopped)`;
}
