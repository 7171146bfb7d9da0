// What `--force` may replace: only a folder this tool wrote, as its marker file says (a run
// directory or an export), or a file it wrote, as its own format field says (a profile); never
// the source model, the run being exported, or anything inside or around them. Anything else
// is refused with one line and left untouched.
import { lstat, readdir, realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { UserError } from '../errors';
import { writeBytesAtomic } from '../io/atomic-write';
import { errnoCode, fsError } from '../io/fs-util';
import { readJsonObject, readTextFile } from '../io/json-file';

export type OwnedKind = 'run' | 'export';

export const MARKER_FILES: Record<OwnedKind, string> = { run: '.loftq-run', export: '.loftq-export' };
const MARKER_TEXT: Record<OwnedKind, string> = { run: 'loftq-run-marker/1', export: 'loftq-export-marker/1' };

/**
 * Writes the marker that makes `dir` replaceable by a later --force, atomically: a failed
 * write (disk full) leaves no marker at all, never an empty one that would block --force.
 */
export async function markOwned(dir: string, kind: OwnedKind): Promise<void> {
  await writeBytesAtomic(join(dir, MARKER_FILES[kind]), `${MARKER_TEXT[kind]}\n# written by loftq; \`--force\` may replace this folder\n`);
}

async function hasMarker(dir: string, kind: OwnedKind): Promise<boolean> {
  try {
    const text = await readTextFile(join(dir, MARKER_FILES[kind]), 4096);
    return text.startsWith(MARKER_TEXT[kind]);
  } catch {
    return false;
  }
}

/** The real path of p, or of its nearest existing ancestor joined with the rest (p may not exist yet). */
export async function realPathOf(p: string): Promise<string> {
  const abs = resolve(p);
  try {
    return await realpath(abs);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'ENOTDIR') throw fsError(e, abs, 'read');
    const parent = dirname(abs);
    if (parent === abs) return abs;
    return join(await realPathOf(parent), basename(abs));
  }
}

/** a is b or lies inside it (both real paths). */
export function isWithin(a: string, b: string): boolean {
  return a === b || a.startsWith(b.endsWith(sep) ? b : b + sep);
}

export interface OutputGuard {
  /** Folders the output must not be, be inside of, or contain (e.g. the source model, the run). */
  protect: Array<{ path: string; what: string }>;
}

/**
 * Checks that `out` may be written: absent, or (with force) an empty folder or one marked as
 * ours, and clear of every protected folder. Returns the real path and whether it exists
 * (non-empty) and must be replaced.
 */
export async function checkOutput(out: string, kind: OwnedKind, force: boolean, guard: OutputGuard): Promise<{ path: string; replace: boolean }> {
  const path = await realPathOf(out);
  for (const p of guard.protect) {
    const protectedPath = await realPathOf(p.path);
    if (isWithin(path, protectedPath) || isWithin(protectedPath, path)) {
      throw new UserError(`output ${path} would overwrite ${p.what} ${protectedPath}: choose a folder outside it`);
    }
  }
  let entries: string[] | null = null;
  try {
    entries = await readdir(path);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOTDIR') throw new UserError(`output ${path} exists and is not a folder`);
    if (code !== 'ENOENT') throw fsError(e, path, 'read');
  }
  if (entries === null) return { path, replace: false };
  if (!force) throw new UserError(`output ${path} already exists (use --force to replace it)`);
  if (entries.length === 0) return { path, replace: false };
  if (!(await hasMarker(path, kind))) {
    const what = kind === 'run' ? 'a run directory made by loftq' : 'an export made by loftq';
    throw new UserError(`output ${path} is not ${what} (no ${MARKER_FILES[kind]} marker): refusing to replace it; remove it yourself or choose another folder`);
  }
  return { path, replace: true };
}

/** A single-file output this tool writes: JSON whose "format" field names it. */
export interface OwnedFile {
  /** The value of the file's "format" field, e.g. loftq-profile/1. */
  format: string;
  /** What it is, for messages: "a profile". */
  what: string;
  /** Largest such file this tool writes (a bigger file is not one of ours). */
  maxBytes: number;
}

/**
 * Checks that the file `out` may be written: absent, or (with force) a regular file this tool
 * wrote, as its "format" says. A model's weights, a folder, a link or anything else is refused
 * with one line. Returns the absolute path.
 */
export async function checkOutputFile(out: string, force: boolean, owned: OwnedFile): Promise<string> {
  const path = resolve(out);
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return path;
    throw fsError(e, path, 'read');
  }
  if (!force) throw new UserError(`output ${path} already exists (use --force to replace it)`);
  const refuse = (why: string) => new UserError(`output ${path} ${why}: refusing to replace it; remove it yourself or choose another file`);
  if (!st.isFile()) throw refuse(st.isDirectory() ? 'is a folder' : st.isSymbolicLink() ? 'is a symbolic link' : 'is not a regular file');
  if (st.size > owned.maxBytes) throw refuse(`is not ${owned.what} made by loftq (${st.size} bytes)`);
  const json = await readJsonObject(path, { maxBytes: owned.maxBytes }).catch(() => null);
  if (json?.format !== owned.format) throw refuse(`is not ${owned.what} made by loftq (no "format": "${owned.format}")`);
  return path;
}
