// The run directory (DESIGN.md's contract): file names, the run.json / layers.json records,
// and their atomic updates. A run is created `running` and always ends done, failed or
// cancelled; its big files appear only complete (temp file + rename).
import { appendFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors';
import { writeJsonAtomic } from '../io/atomic-write';
import { errnoCode, fsError } from '../io/fs-util';
import { readJson } from '../io/json-file';
import { RUN_FORMAT, type LayerRecord, type RunRecord } from './records';

export const RUN_FILES = {
  run: 'run.json',
  layers: 'layers.json',
  metrics: 'metrics.jsonl',
  quantized: 'quantized.safetensors',
  adapter: 'adapter',
  adapterInit: 'adapter-init',
  backbone: 'backbone',
} as const;

export { RUN_FORMAT, type LayerRecord, type RunRecord, type RunStatus } from './records';

/** Creates RUN_DIR for a new run: refuses an existing one unless `force`, and even then
 *  only replaces a folder that is empty or is itself a run directory (never user data). */
export async function prepareRunDir(dir: string, force: boolean): Promise<string> {
  const path = resolve(dir);
  let entries: string[] | null = null;
  try {
    entries = await readdir(path);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOTDIR') throw new UserError(`output ${path} exists and is not a folder`);
    if (code !== 'ENOENT') throw fsError(e, path, 'read');
  }
  if (entries !== null) {
    if (!force) throw new UserError(`output ${path} already exists (use --force to replace it)`);
    if (entries.length > 0 && !entries.includes(RUN_FILES.run)) {
      throw new UserError(`output ${path} is not empty and is not a run directory: refusing to replace it`);
    }
    await rm(path, { recursive: true, force: true });
  }
  try {
    await mkdir(path, { recursive: true });
  } catch (e) {
    throw fsError(e, path, 'create');
  }
  return path;
}

export async function writeRunRecord(dir: string, record: RunRecord): Promise<void> {
  await writeJsonAtomic(join(dir, RUN_FILES.run), record);
}

export async function writeLayers(dir: string, layers: LayerRecord[]): Promise<void> {
  await writeJsonAtomic(join(dir, RUN_FILES.layers), layers);
}

/** A run's JSON file, typed by the caller (the run's own files, written by us). */
export async function readJsonFile<T>(path: string): Promise<T> {
  return (await readJson(path)) as T;
}

export async function readRunRecord(dir: string): Promise<RunRecord> {
  const path = join(resolve(dir), RUN_FILES.run);
  try {
    await stat(path);
  } catch {
    throw new UserError(`${resolve(dir)} is not a run directory (no ${RUN_FILES.run})`);
  }
  const record = await readJsonFile<RunRecord>(path);
  if (record.format !== RUN_FORMAT) throw new UserError(`${path}: unknown run format ${JSON.stringify(record.format)}`);
  return record;
}

export async function readLayers(dir: string): Promise<LayerRecord[]> {
  return readJsonFile<LayerRecord[]>(join(resolve(dir), RUN_FILES.layers));
}

/** metrics.jsonl is append-only: one JSON object per line. */
export async function appendMetric(dir: string, record: Record<string, unknown>): Promise<void> {
  const path = join(dir, RUN_FILES.metrics);
  try {
    await appendFile(path, JSON.stringify(record) + '\n');
  } catch (e) {
    throw fsError(e, path, 'write');
  }
}
