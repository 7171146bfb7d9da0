// The run directory (DESIGN.md's contract): file names, the run.json / layers.json records,
// and their atomic updates. A run is created `running` and always ends done, failed or
// cancelled; its big files appear only complete (temp file + rename).
import { mkdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors';
import { writeJsonAtomic } from '../io/atomic-write';
import { fsError } from '../io/fs-util';
import { appendJsonLine } from '../io/jsonl-append';
import { interruptedMessage, isGone, removeTemporaries } from './interrupted';
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
  let made: string | undefined;
  try {
    made = await mkdir(path, { recursive: true });
  } catch (e) {
    throw fsError(e, path, 'create');
  }
  try {
    await markOwned(path, 'run');
  } catch (e) {
    // A run that could not even be marked leaves nothing behind (the folder, if it made it).
    if (made !== undefined) await rm(made, { recursive: true, force: true }).catch(() => undefined);
    throw e;
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

const STATUSES = new Set(['running', 'done', 'failed', 'cancelled']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** run.json, checked field by field: a hand-edited or damaged file gives one line naming what is wrong. */
export async function readRunRecord(dir: string): Promise<RunRecord> {
  const path = join(resolve(dir), RUN_FILES.run);
  try {
    await stat(path);
  } catch {
    throw new UserError(`${resolve(dir)} is not a run directory (no ${RUN_FILES.run})`);
  }
  const record = await readJson(path);
  if (!isObject(record)) throw new UserError(`${path}: not a run record (the file holds ${record === null ? 'null' : typeof record})`);
  if (record.format !== RUN_FORMAT) throw new UserError(`${path}: unknown run format ${JSON.stringify(record.format)?.slice(0, 80)}`);
  if (typeof record.status !== 'string' || !STATUSES.has(record.status)) throw new UserError(`${path}: "status" must be one of ${[...STATUSES].join(', ')}`);
  for (const field of ['config', 'model', 'timings'] as const) {
    if (!isObject(record[field])) throw new UserError(`${path}: "${field}" must be an object`);
  }
  if (typeof record.created !== 'string') throw new UserError(`${path}: "created" must be a date string`);
  for (const field of ['summary', 'device', 'training'] as const) {
    if (record[field] !== undefined && !isObject(record[field])) throw new UserError(`${path}: "${field}" must be an object`);
  }
  return settleInterrupted(resolve(dir), record as unknown as RunRecord);
}

/**
 * A run (or its training) still `running` whose process is gone is marked failed as
 * interrupted, and what it left half-written is removed: its partial outputs (a quantize that
 * never finished has none that are complete) and the temporary files of atomic writes.
 */
async function settleInterrupted(dir: string, record: RunRecord): Promise<RunRecord> {
  let changed = false;
  if (record.status === 'running' && isGone(record.process)) {
    record.status = 'failed';
    record.error = interruptedMessage(record.process);
    record.finished = new Date().toISOString();
    for (const partial of [RUN_FILES.quantized, RUN_FILES.adapter, RUN_FILES.adapterInit, RUN_FILES.backbone]) {
      await rm(join(dir, partial), { recursive: true, force: true }).catch(() => undefined);
    }
    changed = true;
  }
  if (record.training?.status === 'running' && isGone(record.training.process)) {
    record.training = { ...record.training, status: 'failed', error: interruptedMessage(record.training.process), finished: new Date().toISOString() };
    changed = true;
  }
  if (changed) {
    await removeTemporaries(dir);
    await writeRunRecord(dir, record);
  }
  return record;
}

/** layers.json, checked entry by entry (names, shapes, finite errors). */
export async function readLayers(dir: string): Promise<LayerRecord[]> {
  const path = join(resolve(dir), RUN_FILES.layers);
  const layers = await readJson(path);
  if (!Array.isArray(layers)) throw new UserError(`${path}: must be an array of matrices`);
  layers.forEach((l: unknown, i) => {
    const where = `${path}: entry ${i}`;
    if (!isObject(l)) throw new UserError(`${where} is not an object`);
    if (typeof l.name !== 'string' || l.name === '') throw new UserError(`${where}: "name" must be a string`);
    const shape = l.shape;
    if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) throw new UserError(`${where}: "shape" must be two positive integers`);
    for (const f of ['bits', 'err_q', 'err_init'] as const) {
      if (typeof l[f] !== 'number' || !Number.isFinite(l[f])) throw new UserError(`${where}: "${f}" must be a finite number`);
    }
    for (const f of ['step_errors', 'residual_top_sv'] as const) {
      const a = l[f];
      if (!Array.isArray(a) || !a.every((x) => typeof x === 'number')) throw new UserError(`${where}: "${f}" must be an array of numbers`);
    }
  });
  return layers as LayerRecord[];
}

/** metrics.jsonl is append-only: one JSON object per line, each whole or absent (jsonl-append.ts). */
export async function appendMetric(dir: string, record: Record<string, unknown>): Promise<void> {
  await appendJsonLine(join(dir, RUN_FILES.metrics), record);
}
