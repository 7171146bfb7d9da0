// The PEFT LoRA adapter (DESIGN.md's contract): adapter_config.json and
// adapter_model.safetensors with base_model.model.<module>.lora_A.weight [r, in] and
// .lora_B.weight [out, r]. The LoftQ values are in the tensors, so init_lora_weights is true.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors';
import { writeJsonAtomic } from '../io/atomic-write';
import { fsError } from '../io/fs-util';
import { readJsonObject } from '../io/json-file';
import { findNonFinite, openSafetensors, readTensorF32 } from '../io/safetensors-read';
import { PlannedSafetensors } from '../io/safetensors-planned';
import { bytesOf, writeSafetensors, type TensorEntry } from '../io/safetensors-write';
import { matrix, type Matrix } from '../tensor/matrix';

export interface AdapterMatrix {
  name: string;
  loraA: Matrix;
  loraB: Matrix;
}

export interface AdapterConfigInput {
  rank: number;
  alpha: number;
  rslora: boolean;
  targetModules: string[];
  baseModel: string;
  loftq: Record<string, unknown>;
}

export function adapterKey(module: string, which: 'lora_A' | 'lora_B'): string {
  return `base_model.model.${module}.${which}.weight`;
}

export function adapterConfig(c: AdapterConfigInput): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: c.rank,
    lora_alpha: c.alpha,
    lora_dropout: 0,
    target_modules: c.targetModules,
    base_model_name_or_path: c.baseModel,
    init_lora_weights: true,
    bias: 'none',
    use_rslora: c.rslora,
    fan_in_fan_out: false,
    modules_to_save: null,
    inference_mode: false,
    loftq_config: c.loftq,
  };
}

export async function writePeftAdapter(dir: string, matrices: AdapterMatrix[], config: AdapterConfigInput): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw fsError(e, dir, 'create folder');
  }
  const tensors: TensorEntry[] = [];
  for (const m of matrices) {
    tensors.push({ name: adapterKey(m.name, 'lora_A'), dtype: 'F32', shape: [m.loraA.rows, m.loraA.cols], data: bytesOf(m.loraA.data) });
    tensors.push({ name: adapterKey(m.name, 'lora_B'), dtype: 'F32', shape: [m.loraB.rows, m.loraB.cols], data: bytesOf(m.loraB.data) });
  }
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  await writeJsonAtomic(join(dir, 'adapter_config.json'), adapterConfig(config));
}

export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const ADAPTER_CONFIG = 'adapter_config.json';

/**
 * An adapter written matrix by matrix as an init produces them (the shapes are known up
 * front), so a large model's factors are never all in memory; the config comes last.
 */
export class PeftAdapterWriter {
  private constructor(
    readonly dir: string,
    private readonly file: PlannedSafetensors,
  ) {}

  static async create(dir: string, matrices: ReadonlyArray<{ name: string; rank: number; shape: [number, number] }>): Promise<PeftAdapterWriter> {
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw fsError(e, dir, 'create folder');
    }
    const tensors = matrices.flatMap((m) => [
      { name: adapterKey(m.name, 'lora_A'), dtype: 'F32' as const, shape: [m.rank, m.shape[1]] },
      { name: adapterKey(m.name, 'lora_B'), dtype: 'F32' as const, shape: [m.shape[0], m.rank] },
    ]);
    return new PeftAdapterWriter(dir, await PlannedSafetensors.create(join(dir, ADAPTER_WEIGHTS), tensors));
  }

  async write(m: AdapterMatrix): Promise<void> {
    await this.file.write(adapterKey(m.name, 'lora_A'), bytesOf(m.loraA.data));
    await this.file.write(adapterKey(m.name, 'lora_B'), bytesOf(m.loraB.data));
  }

  async finish(config: AdapterConfigInput): Promise<void> {
    await this.file.finish();
    await writeJsonAtomic(join(this.dir, ADAPTER_CONFIG), adapterConfig(config));
  }

  abort(): Promise<void> {
    return this.file.abort();
  }
}

export interface AdapterSettings {
  r: number;
  alpha: number;
  rslora: boolean;
  /** s = alpha/r, or alpha/√r with rsLoRA. */
  scaling: number;
}

/** adapter_config.json's LoRA settings, checked: r a positive integer, lora_alpha a positive number. */
export function adapterSettings(raw: unknown, path: string): AdapterSettings {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(`${path}: not an adapter config (expected an object)`);
  const c = raw as Record<string, unknown>;
  const r = c.r;
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 1) throw new UserError(`${path}: "r" must be a positive integer, got ${JSON.stringify(r)?.slice(0, 40)}`);
  const alpha = c.lora_alpha;
  if (typeof alpha !== 'number' || !(alpha > 0) || !Number.isFinite(alpha)) throw new UserError(`${path}: "lora_alpha" must be a positive number, got ${JSON.stringify(alpha)?.slice(0, 40)}`);
  if (c.use_rslora !== undefined && c.use_rslora !== null && typeof c.use_rslora !== 'boolean') throw new UserError(`${path}: "use_rslora" must be true or false`);
  const rslora = c.use_rslora === true;
  return { r, alpha, rslora, scaling: rslora ? alpha / Math.sqrt(r) : alpha / r };
}

/** Checks that an adapter's A and B have the shapes LoRA needs for a [out, in] weight with rank r. */
export function checkAdapterShapes(path: string, module: string, a: readonly number[], b: readonly number[], out: number, inp: number, r: number): void {
  if (a.length !== 2 || a[0] !== r || a[1] !== inp) throw new UserError(`${path}: ${module}.lora_A has shape [${a.join(', ')}], expected [${r}, ${inp}] (r = ${r})`);
  if (b.length !== 2 || b[0] !== out || b[1] !== r) throw new UserError(`${path}: ${module}.lora_B has shape [${b.join(', ')}], expected [${out}, ${r}] (r = ${r})`);
}

/**
 * Reads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) written by
 * writePeftAdapter: the matrices in file order, and the config it was written with.
 */
export async function readPeftAdapter(dir: string): Promise<{ matrices: AdapterMatrix[]; config: AdapterConfigInput }> {
  const configPath = join(dir, 'adapter_config.json');
  const raw = await readJsonObject(configPath, { optional: true });
  if (raw === null) throw new UserError(`${dir} has no adapter (no adapter_config.json)`);
  const { r, alpha } = adapterSettings(raw, configPath);
  const config: AdapterConfigInput = {
    rank: r,
    alpha,
    rslora: raw.use_rslora === true,
    targetModules: Array.isArray(raw.target_modules) ? raw.target_modules.map(String) : [],
    baseModel: typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : '',
    loftq: typeof raw.loftq_config === 'object' && raw.loftq_config !== null ? (raw.loftq_config as Record<string, unknown>) : {},
  };
  const file = await openSafetensors(join(dir, 'adapter_model.safetensors'));
  const matrices: AdapterMatrix[] = [];
  const suffix = '.lora_A.weight';
  const prefix = 'base_model.model.';
  for (const [key, infoA] of file.tensors) {
    if (!key.startsWith(prefix) || !key.endsWith(suffix)) continue;
    const name = key.slice(prefix.length, -suffix.length);
    const keyB = adapterKey(name, 'lora_B');
    const infoB = file.tensors.get(keyB);
    if (!infoB) throw new UserError(`${file.path}: ${key} has no matching ${keyB}`);
    const [ra, inF] = infoA.shape;
    const [outF, rb] = infoB.shape;
    if (infoA.shape.length !== 2 || infoB.shape.length !== 2 || ra !== rb || ra !== r) {
      throw new UserError(`${file.path}: ${name}: lora_A [${infoA.shape.join(', ')}] and lora_B [${infoB.shape.join(', ')}] do not fit together with r = ${r} of adapter_config.json`);
    }
    const a = await readTensorF32(file, key);
    const b = await readTensorF32(file, keyB);
    for (const [k, data] of [[key, a], [keyB, b]] as const) {
      const bad = findNonFinite(data);
      if (bad >= 0) throw new UserError(`${file.path}: ${k} has a non-finite value at index ${bad}`);
    }
    matrices.push({ name, loraA: matrix(ra, inF, a), loraB: matrix(outF, rb, b) });
  }
  if (matrices.length === 0) throw new UserError(`${file.path}: no LoRA tensors`);
  return { matrices, config };
}
