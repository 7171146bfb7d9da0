// A Hugging Face model folder whose target matrices hold the dequantized Q (in the model's
// own dtype), every other tensor copied as is, plus config and tokenizer files: the base
// model that the adapter is trained on (Q + s·B·A ≈ W). With `transform` it also writes
// merged weights. Tensors are produced one at a time, so memory stays at one matrix.
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isFloatDtype } from '../io/dtypes';
import { fsError } from '../io/fs-util';
import type { ModelWeights } from '../io/model-weights';
import { encodeF32, writeShardedSafetensors, type TensorEntry } from '../io/safetensors-write';
import type { QuantizedFile } from '../runs/quantized-file';

/** Files of a model folder besides its weights that a loader needs. */
const AUX_FILES = new Set([
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
]);

export async function copyModelAuxFiles(modelDir: string, outDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(modelDir);
  } catch (e) {
    throw fsError(e, modelDir, 'read');
  }
  for (const n of names) {
    if (!AUX_FILES.has(n)) continue;
    try {
      await copyFile(join(modelDir, n), join(outDir, n));
    } catch (e) {
      throw fsError(e, join(outDir, n), 'write');
    }
  }
}

export interface BackboneOptions {
  /** Replaces each target's dequantized Q before it is written (merged export). */
  transform?: (module: string, q: Float32Array) => Promise<Float32Array>;
  maxShardBytes?: number;
  onTensor?: (done: number, total: number) => void;
}

export async function writeBackbone(
  outDir: string,
  modelDir: string,
  weights: ModelWeights,
  quantized: QuantizedFile,
  options: BackboneOptions = {},
): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true });
  } catch (e) {
    throw fsError(e, outDir, 'create folder');
  }
  const targets = new Set(quantized.names());
  const names = weights.names();
  let done = 0;
  const entries: TensorEntry[] = names.map((name) => {
    const info = weights.info(name);
    const module = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
    const isTarget = targets.has(module) && isFloatDtype(info.dtype);
    return {
      name,
      dtype: info.dtype,
      shape: info.shape,
      data: async () => {
        let bytes: Uint8Array;
        if (isTarget && isFloatDtype(info.dtype)) {
          let q = await quantized.dequantize(module);
          if (options.transform) q = await options.transform(module, q);
          bytes = encodeF32(q, info.dtype);
        } else {
          bytes = await weights.readRaw(name);
        }
        options.onTensor?.(++done, names.length);
        return bytes;
      },
    };
  });
  await writeShardedSafetensors(outDir, 'model', entries, {}, options.maxShardBytes);
  await copyModelAuxFiles(modelDir, outDir);
}
