// The run directory (DESIGN.md's contract): file names, the run.json / layers.json records,
// and their atomic updates. A run is created `running` and always ends done, failed or
// cancelled; its big files appear only complete (temp file + rename).
import { appendFile, mkdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors';
import { writeJsonAtomic } from '../io/atomic-write';
import { fsError } from '../io/fs-util';
import { checkOutput, markOwned } from './ownership';
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

/**
 * Creates RUN_DIR for a new run: refuses an existing one unless `force`, and even then only
 * replaces an empty folder or a run directory this tool made (its .loftq-run marker), never
 * the source model or a folder around or inside it. The new folder gets the marker.
 */
export async function prepareRunDir(dir: string, force: boolean, source?: string): Promise<string> {
  const { path, replace } = await checkOutput(dir, 'run', force, { protect: source ? [{ path: source, what: 'the source model' }] : [] });
  if (replace) await rm(path, { recursive: true, force: true });
  try {
    await mkdir(path, { recursive: true });
  } catch (e) {
    throw fsError(e, path, 'create');
  }
  await markOwned(path, 'run');
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
