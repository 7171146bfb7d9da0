// The PEFT LoRA adapter (DESIGN.md's contract): adapter_config.json and
// adapter_model.safetensors with base_model.model.<module>.lora_A.weight [r, in] and
// .lora_B.weight [out, r]. The LoftQ values are in the tensors, so init_lora_weights is true.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../io/atomic-write';
import { fsError } from '../io/fs-util';
import { PlannedSafetensors } from '../io/safetensors-planned';
import { bytesOf, writeSafetensors, type TensorEntry } from '../io/safetensors-write';
import type { Matrix } from '../tensor/matrix';

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

