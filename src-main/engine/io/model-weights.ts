// A model folder's weights: one model.safetensors or shards listed by
// model.safetensors.index.json. Only headers are held; tensors are read one at a time.
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UserError } from '../errors';
import { fsError } from './fs-util';
import { readJson } from './json-file';
import {
  openSafetensors,
  readTensorF32,
  readTensorRaw,
  type SafetensorsFile,
  type TensorInfo,
} from './safetensors-read';

export const SINGLE_WEIGHTS = 'model.safetensors';
export const WEIGHTS_INDEX = 'model.safetensors.index.json';

export interface WeightInfo extends TensorInfo {
  /** The safetensors file holding the tensor. */
  file: string;
}

export class ModelWeights {
  constructor(
    readonly dir: string,
    /** The safetensors files, in shard order. */
    readonly files: readonly SafetensorsFile[],
    private readonly map: ReadonlyMap<string, SafetensorsFile>,
  ) {}

  /** Tensor names, in index order (sharded) or header order (single file). */
  names(): string[] {
    return [...this.map.keys()];
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  info(name: string): WeightInfo {
    const file = this.fileOf(name);
    return { ...(file.tensors.get(name) as TensorInfo), file: file.path };
  }

  /** Total bytes of all tensors as stored. */
  totalBytes(): number {
    let n = 0;
    for (const [name, file] of this.map) {
      const t = file.tensors.get(name) as TensorInfo;
      n += t.end - t.begin;
    }
    return n;
  }

  /** Total elements of all tensors. */
  totalElements(): number {
    let n = 0;
    for (const [name, file] of this.map) {
      const shape = (file.tensors.get(name) as TensorInfo).shape;
      let e = 1;
      for (const d of shape) e *= d;
      n += e;
    }
    return n;
  }

  async readF32(name: string): Promise<Float32Array> {
    return readTensorF32(this.fileOf(name), name);
  }

  async readRaw(name: string): Promise<Uint8Array> {
    return readTensorRaw(this.fileOf(name), name);
  }

  private fileOf(name: string): SafetensorsFile {
    const file = this.map.get(name);
    if (!file) throw new UserError(`${this.dir}: the model has no tensor ${JSON.stringify(name)}`);
    return file;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function openModelWeights(modelDir: string): Promise<ModelWeights> {
  let entries: string[];
  try {
    if (!(await stat(modelDir)).isDirectory()) throw new UserError(`${modelDir}: not a folder`);
    entries = await readdir(modelDir);
  } catch (e) {
    throw fsError(e, modelDir, 'open model folder');
  }
  // Same precedence as transformers: the single file wins over an index.
  if (entries.includes(SINGLE_WEIGHTS)) {
    const file = await openSafetensors(join(modelDir, SINGLE_WEIGHTS));
    const map = new Map<string, SafetensorsFile>();
    for (const name of file.tensors.keys()) map.set(name, file);
    return new ModelWeights(modelDir, [file], map);
  }
  if (entries.includes(WEIGHTS_INDEX)) return openSharded(modelDir);

  const others = entries.filter((f) => f.endsWith('.safetensors'));
  let hint = '';
  if (entries.some((f) => /^pytorch_model(-.*)?\.bin(\.index\.json)?$/.test(f))) {
    hint = '; it has pytorch_model.bin weights, which are not supported (convert them to safetensors first)';
  } else if (others.length > 0) {
    hint =
      `; it has ${others.join(', ')}, ` +
      `but the weights must be named ${SINGLE_WEIGHTS} or listed in ${WEIGHTS_INDEX}`;
  }
  throw new UserError(`${modelDir}: no ${SINGLE_WEIGHTS} or ${WEIGHTS_INDEX} found${hint}`);
}

async function openSharded(modelDir: string): Promise<ModelWeights> {
  const indexPath = join(modelDir, WEIGHTS_INDEX);
  const json = await readJson(indexPath);
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new UserError(`${indexPath}: missing "weight_map" object`);
  }

  const shardNames: string[] = [];
  for (const [tensor, shard] of Object.entries(weightMap)) {
    // Shards must be plain names in the model folder, never paths that leave it.
    if (typeof shard !== 'string' || shard === '' || basename(shard) !== shard || shard === '..' || shard === '.') {
      throw new UserError(
        `${indexPath}: weight_map[${JSON.stringify(tensor)}] must be a file name in the model folder`,
      );
    }
    if (!shardNames.includes(shard)) shardNames.push(shard);
  }
  if (shardNames.length === 0) throw new UserError(`${indexPath}: "weight_map" is empty`);

  const files = new Map<string, SafetensorsFile>();
  for (const shard of shardNames.sort()) {
    const path = join(modelDir, shard);
    if (!(await exists(path))) throw new UserError(`${indexPath}: shard ${shard} is missing from the model folder`);
    files.set(shard, await openSafetensors(path));
  }

  const map = new Map<string, SafetensorsFile>();
  for (const [tensor, shard] of Object.entries(weightMap as Record<string, string>)) {
    const file = files.get(shard) as SafetensorsFile;
    if (!file.tensors.has(tensor)) {
      throw new UserError(
        `${indexPath}: tensor ${JSON.stringify(tensor)} is mapped to ${shard}, which does not contain it`,
      );
    }
    map.set(tensor, file);
  }
  return new ModelWeights(modelDir, [...files.values()], map);
}
