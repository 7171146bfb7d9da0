// Training checkpoints: RUN_DIR/checkpoints/step-N/ holds
//   adapter_config.json, adapter_model.safetensors   the adapter at step N (PEFT format, so the
//                                                     folder loads as an adapter by itself)
//   optimizer.safetensors   AdamW's moments: `<param key>.exp_avg`, `<param key>.exp_avg_sq` (F32)
//   state.json              the loop: step, data position, tokens seen, RNG state (none: the
//                           data order is a function of (seed, epoch)), the training config
// A checkpoint is assembled in a temporary folder beside the others and renamed into place,
// so a folder named step-N is always complete; the latest complete one is where a run resumes.
// RUN_DIR/adapter/ (the latest adapter) is replaced the same way.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors';
import { writeJsonAtomic } from '../io/atomic-write';
import { errnoCode, fsError } from '../io/fs-util';
import { isJsonObject, readJson } from '../io/json-file';
import { openSafetensors, readTensorF32, type SafetensorsFile } from '../io/safetensors-read';
import { f32ToLeBytes, writeSafetensors, type TensorEntry } from '../io/safetensors-write';
import { writePeftAdapter, type AdapterConfigInput } from '../adapter/peft';
import { RUN_FILES } from '../runs/run-dir';
import type { AdamWState } from './adamw';
import { adapterFromParams, paramShapes, type AdapterLayout, type ParamMap } from './adapter-params';
import { CONFIG_FIELDS, RESUMABLE_CHANGES, type DataIdentity, type TrainConfig } from './config';
import type { DataPosition } from './packing';

export const CHECKPOINTS_DIR = 'checkpoints';
export const CHECKPOINT_FORMAT = 'loftq-train-checkpoint/1';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const STATE_FILE = 'state.json';
const STEP_DIR = /^step-(\d+)$/;

/** What the loop needs besides the tensors to continue exactly where it stopped. */
export interface LoopState {
  step: number;
  data: DataPosition;
  tokensSeen: number;
  /** Random-number state of the loop; null: it has none (the data order is derived from the seed). */
  rng: null;
  config: TrainConfig;
}

export interface Checkpoint {
  loop: LoopState;
  params: ParamMap;
  optimizer: AdamWState;
}

export function checkpointDir(runDir: string, step: number): string {
  return join(runDir, CHECKPOINTS_DIR, `step-${step}`);
}

/**
 * Fills a temporary sibling folder with `fill` and renames it to `dir`, replacing a previous
 * `dir` (moved aside first, removed after). On failure the temporary folder is removed.
 */
export async function replaceDirAtomic(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tag = randomBytes(6).toString('hex');
  const parent = dirname(dir);
  const base = basename(dir);
  const tmp = join(parent, `.tmp-${base}-${tag}`);
  const old = join(parent, `.old-${base}-${tag}`);
  try {
    await mkdir(tmp, { recursive: true });
    await fill(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw fsError(e, dir, 'write');
  }
  let movedAside = false;
  try {
    try {
      await rename(dir, old);
      movedAside = true;
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
    await rename(tmp, dir);
  } catch (e) {
    if (movedAside) await rename(old, dir).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw fsError(e, dir, 'write');
  }
  if (movedAside) await rm(old, { recursive: true, force: true });
}

export interface SaveCheckpointInput {
  layout: AdapterLayout;
  adapterConfig: AdapterConfigInput;
  params: ReadonlyMap<string, Float32Array>;
  optimizer: AdamWState;
  loop: LoopState;
}

/** Writes checkpoints/step-N/ atomically; with `keep`, removes all but the newest `keep` checkpoints. */
export async function saveCheckpoint(runDir: string, c: SaveCheckpointInput, opts: { keep?: number } = {}): Promise<string> {
  const root = join(runDir, CHECKPOINTS_DIR);
  try {
    await mkdir(root, { recursive: true });
  } catch (e) {
    throw fsError(e, root, 'create folder');
  }
  await removeLeftovers(root);
  const dir = checkpointDir(runDir, c.loop.step);
  const shapes = paramShapes(c.layout);
  await replaceDirAtomic(dir, async (tmp) => {
    await writePeftAdapter(tmp, adapterFromParams(c.layout, c.params), c.adapterConfig);
    const entries: TensorEntry[] = [];
    for (const [key, shape] of shapes) {
      entries.push({ name: `${key}.exp_avg`, dtype: 'F32', shape, data: f32ToLeBytes(c.optimizer.expAvg.get(key)!) });
      entries.push({ name: `${key}.exp_avg_sq`, dtype: 'F32', shape, data: f32ToLeBytes(c.optimizer.expAvgSq.get(key)!) });
    }
    await writeSafetensors(join(tmp, OPTIMIZER_FILE), entries, { 'loftq.format': 'loftq-adamw/1', 'loftq.step': String(c.optimizer.step) });
    await writeJsonAtomic(join(tmp, STATE_FILE), {
      format: CHECKPOINT_FORMAT,
      step: c.loop.step,
      data_position: c.loop.data,
      tokens_seen: c.loop.tokensSeen,
      rng: c.loop.rng,
      optimizer: { file: OPTIMIZER_FILE, step: c.optimizer.step },
      config: c.loop.config,
      time: new Date().toISOString(),
    });
  });
  if (opts.keep !== undefined && opts.keep >= 1) {
    const steps = await listCheckpointSteps(runDir);
    for (const s of steps.slice(opts.keep)) await rm(checkpointDir(runDir, s), { recursive: true, force: true });
  }
  return dir;
}

// Temporary folders of an interrupted replaceDirAtomic (of `base` only, or of anything in a
// folder that is ours alone, like checkpoints/).
async function removeLeftovers(root: string, base?: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const m = /^\.(tmp|old)-(.+)-[0-9a-f]{12}$/.exec(name);
    if (m && (base === undefined || m[2] === base)) await rm(join(root, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The steps of the folders named step-N, newest first. */
export async function listCheckpointSteps(runDir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(join(runDir, CHECKPOINTS_DIR));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw fsError(e, join(runDir, CHECKPOINTS_DIR), 'read');
  }
  return names
    .map((n) => STEP_DIR.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
}

/** The newest checkpoint whose state.json is readable and names its own step; null if none. */
export async function findLatestCheckpoint(runDir: string): Promise<{ step: number; dir: string } | null> {
  for (const step of await listCheckpointSteps(runDir)) {
    const dir = checkpointDir(runDir, step);
    try {
      const state = await readJson(join(dir, STATE_FILE));
      if (isJsonObject(state) && state.format === CHECKPOINT_FORMAT && state.step === step) return { step, dir };
    } catch {
      // not a usable checkpoint: try the one before
    }
  }
  return null;
}

/** Reads a checkpoint folder, checking it against the run's adapter layout. */
export async function loadCheckpoint(dir: string, layout: AdapterLayout): Promise<Checkpoint> {
  const statePath = join(dir, STATE_FILE);
  const state = await readJson(statePath);
  if (!isJsonObject(state) || state.format !== CHECKPOINT_FORMAT) throw new UserError(`${statePath}: not a ${CHECKPOINT_FORMAT} checkpoint`);
  const step = state.step;
  const pos = state.data_position;
  const opt = state.optimizer;
  if (
    typeof step !== 'number' ||
    !Number.isSafeInteger(step) ||
    step < 0 ||
    !isJsonObject(pos) ||
    typeof pos.epoch !== 'number' ||
    typeof pos.index !== 'number' ||
    typeof state.tokens_seen !== 'number' ||
    !isJsonObject(opt) ||
    typeof opt.step !== 'number' ||
    !isJsonObject(state.config)
  ) {
    throw new UserError(`${statePath}: incomplete checkpoint state`);
  }
  const shapes = paramShapes(layout);
  const adapterFile = await openSafetensors(join(dir, 'adapter_model.safetensors'));
  const optFile = await openSafetensors(join(dir, OPTIMIZER_FILE));
  const params: ParamMap = new Map();
  const expAvg = new Map<string, Float32Array>();
  const expAvgSq = new Map<string, Float32Array>();
  for (const [key, shape] of shapes) {
    params.set(key, await readShaped(adapterFile, key, shape));
    expAvg.set(key, await readShaped(optFile, `${key}.exp_avg`, shape));
    expAvgSq.set(key, await readShaped(optFile, `${key}.exp_avg_sq`, shape));
  }
  if (adapterFile.tensors.size !== shapes.size) {
    throw new UserError(`${adapterFile.path}: ${adapterFile.tensors.size} tensors, the run's adapter has ${shapes.size}`);
  }
  return {
    loop: {
      step,
      data: { epoch: pos.epoch, index: pos.index },
      tokensSeen: state.tokens_seen,
      rng: null,
      config: state.config as unknown as TrainConfig,
    },
    params,
    optimizer: { step: opt.step, expAvg, expAvgSq },
  };
}

async function readShaped(file: SafetensorsFile, name: string, shape: readonly number[]): Promise<Float32Array> {
  const info = file.tensors.get(name);
  if (!info) throw new UserError(`${file.path}: no tensor ${name} (the checkpoint does not match the run's adapter)`);
  if (info.dtype !== 'F32' || info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
    throw new UserError(`${file.path}: ${name} is ${info.dtype} [${info.shape.join(', ')}], the run's adapter needs F32 [${shape.join(', ')}]`);
  }
  // A fresh copy: the reader's buffer may be a view.
  return (await readTensorF32(file, name)).slice();
}

/** Writes RUN_DIR/adapter/ (the latest adapter) atomically. */
export async function writeRunAdapter(runDir: string, layout: AdapterLayout, params: ReadonlyMap<string, Float32Array>, config: AdapterConfigInput): Promise<void> {
  await removeLeftovers(runDir, RUN_FILES.adapter);
  await replaceDirAtomic(join(runDir, RUN_FILES.adapter), (tmp) => writePeftAdapter(tmp, adapterFromParams(layout, params), config));
}

/**
 * Refuses to resume with a configuration that would change the result, naming the first
 * differing field: `resume: --lr was 0.0002, now 0.0001; start a new run or use the same settings`.
 * Only --eval-every and --checkpoint-every may change.
 */
export function checkResumeConfig(saved: TrainConfig, now: TrainConfig): void {
  for (const [field, flag] of CONFIG_FIELDS) {
    if (RESUMABLE_CHANGES.has(field)) continue;
    const a = saved[field] as unknown;
    const b = now[field] as unknown;
    if (sameValue(field, a, b)) continue;
    throw new UserError(`resume: ${flag} was ${describe(a)}, now ${describe(b)}; start a new run or use the same settings`);
  }
}

function sameValue(field: keyof TrainConfig, a: unknown, b: unknown): boolean {
  if (field === 'data' || field === 'evalData') {
    // Data is the same when its tokens are, wherever the file now lives.
    const x = a as DataIdentity | null | undefined;
    const y = b as DataIdentity | null | undefined;
    if (!x || !y) return !x && !y;
    return x.tokens === y.tokens && x.sha256 === y.sha256;
  }
  return JSON.stringify(a) === JSON.stringify(b);
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'not set';
  if (Array.isArray(v)) return v.length === 0 ? 'none' : v.join(',');
  if (isJsonObject(v) && typeof v.sha256 === 'string') return `${String(v.path)} (${String(v.tokens)} tokens, sha256 ${v.sha256.slice(0, 12)})`;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
