// The trainable parameters of a LoRA adapter as the training loop sees them: a map from the
// PEFT tensor key (`base_model.model.<module>.lora_A.weight`, export/peft.ts adapterKey) to a
// float32 array, in a fixed order (module by module, A then B). The adapter's layout (module
// names and shapes) turns the map back into PEFT matrices for checkpoints and adapter/.
import { join } from 'node:path';
import { UserError } from '../errors';
import { findNonFinite, openSafetensors, readTensorF32 } from '../io/safetensors-read';
import { readJsonObject } from '../io/json-file';
import { adapterKey, adapterSettings, type AdapterConfigInput, type AdapterMatrix } from '../export/peft';
import { matrix } from '../tensor/matrix';

export type ParamMap = Map<string, Float32Array>;

export interface AdapterLayoutEntry {
  name: string;
  rank: number;
  inFeatures: number;
  outFeatures: number;
}

export type AdapterLayout = readonly AdapterLayoutEntry[];

export function layoutOf(matrices: readonly AdapterMatrix[]): AdapterLayoutEntry[] {
  return matrices.map((m) => {
    if (m.loraA.rows !== m.loraB.cols) throw new Error(`adapter ${m.name}: lora_A has ${m.loraA.rows} rows, lora_B ${m.loraB.cols} columns`);
    return { name: m.name, rank: m.loraA.rows, inFeatures: m.loraA.cols, outFeatures: m.loraB.rows };
  });
}

/** The parameter shapes by key, in parameter order. */
export function paramShapes(layout: AdapterLayout): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const e of layout) {
    out.set(adapterKey(e.name, 'lora_A'), [e.rank, e.inFeatures]);
    out.set(adapterKey(e.name, 'lora_B'), [e.outFeatures, e.rank]);
  }
  return out;
}

/** Copies of the adapter's matrices as training parameters. */
export function paramsFromAdapter(matrices: readonly AdapterMatrix[]): ParamMap {
  layoutOf(matrices);
  const out: ParamMap = new Map();
  for (const m of matrices) {
    out.set(adapterKey(m.name, 'lora_A'), m.loraA.data.slice());
    out.set(adapterKey(m.name, 'lora_B'), m.loraB.data.slice());
  }
  return out;
}

/** The parameters as PEFT matrices (views of the arrays, not copies). */
export function adapterFromParams(layout: AdapterLayout, params: ReadonlyMap<string, Float32Array>): AdapterMatrix[] {
  return layout.map((e) => ({
    name: e.name,
    loraA: matrix(e.rank, e.inFeatures, params.get(adapterKey(e.name, 'lora_A'))),
    loraB: matrix(e.outFeatures, e.rank, params.get(adapterKey(e.name, 'lora_B'))),
  }));
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
