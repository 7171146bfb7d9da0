// The backbone of a run and of an export. A run keeps only what is not quantized
// (embeddings, norms, head: backbone/unquantized.safetensors) plus config and tokenizer
// files; the target matrices live once, packed, in quantized.safetensors. An export writes the
// full model folder: every other tensor as stored and each target as its dequantized Q (or,
// merged, Q + s·B·A) in the original dtype. Tensors are produced one at a time.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors';
import { encodeF32, isFloatDtype, type FloatDtype } from '../io/dtypes';
import { fsError, openRegularFile } from '../io/fs-util';
import { readModelConfig } from '../io/hf-config';
import { ModelWeights, openModelWeights } from '../io/model-weights';
import { openSafetensors, type SafetensorsFile } from '../io/safetensors-read';
import { writeSafetensors, writeShardedSafetensors, type TensorEntry } from '../io/safetensors-write';
import type { QuantizedFile } from './quantized-file';

export const UNQUANTIZED_WEIGHTS = 'unquantized.safetensors';

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
    // Copied as data: a link is followed, but only to a regular file (never a FIFO or device).
    const from = join(modelDir, n);
    await (await openRegularFile(from)).close();
    try {
      await copyFile(from, join(outDir, n));
    } catch (e) {
      throw fsError(e, join(outDir, n), 'write');
    }
  }
}

/** The module a weight tensor belongs to (`….q_proj.weight` → `….q_proj`). */
export function moduleOf(tensor: string): string {
  return tensor.endsWith('.weight') ? tensor.slice(0, -'.weight'.length) : tensor;
}

/** A run's backbone folder: config and tokenizer files and every tensor that is not quantized. */
export async function writeRunBackbone(
  outDir: string,
  modelDir: string,
  weights: ModelWeights,
  quantized: ReadonlySet<string>,
  onTensor?: () => void,
): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true });
  } catch (e) {
    throw fsError(e, outDir, 'create folder');
  }
  const entries: TensorEntry[] = weights
    .names()
    .filter((name) => !quantized.has(moduleOf(name)))
    .map((name) => {
      const info = weights.info(name);
      return {
        name,
        dtype: info.dtype,
        shape: info.shape,
        data: async () => {
          onTensor?.();
          return weights.readRaw(name);
        },
      };
    });
  await writeSafetensors(join(outDir, UNQUANTIZED_WEIGHTS), entries, {
    'loftq.backbone': 'the tensors that are not quantized; the quantized matrices are in ../quantized.safetensors',
  });
  await copyModelAuxFiles(modelDir, outDir);
}

/** A run's backbone tensors: unquantized.safetensors, or the full backbone of runs made before it. */
export async function openRunBackbone(backboneDir: string): Promise<ModelWeights> {
  if (!existsSync(backboneDir)) throw new UserError(`${dirname(backboneDir)}: the run has no ${basename(backboneDir)}/ folder (the tensors that are not quantized): it was removed or never finished`);
  let file: SafetensorsFile | null = null;
  try {
    file = await openSafetensors(join(backboneDir, UNQUANTIZED_WEIGHTS));
  } catch {
    // Older runs wrote a complete model folder here.
    return openModelWeights(backboneDir);
  }
  const map = new Map<string, SafetensorsFile>();
  for (const name of file.tensors.keys()) map.set(name, file);
  return new ModelWeights(backboneDir, [file], map);
}

const TORCH_DTYPES: Record<string, FloatDtype> = { bfloat16: 'BF16', float16: 'F16', float32: 'F32', float64: 'F64' };

/** Names in a natural order (layer 2 before layer 10), as a model folder lists them. */
function naturalOrder(names: string[]): string[] {
  const collator = new Intl.Collator('en', { numeric: true });
  return [...names].sort(collator.compare);
}

export interface FullBackboneOptions {
  /** Replaces each target's dequantized Q before it is written (merged export). */
  transform?: (module: string, q: Float32Array) => Promise<Float32Array>;
  maxShardBytes?: number;
  onTensor?: (done: number, total: number) => void;
}

/** A complete Hugging Face model folder from a run's backbone and its quantized matrices. */
export async function writeFullBackbone(outDir: string, backboneDir: string, quantized: QuantizedFile, options: FullBackboneOptions = {}): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true });
  } catch (e) {
    throw fsError(e, outDir, 'create folder');
  }
  const backbone = await openRunBackbone(backboneDir);
  const config = await readModelConfig(backboneDir);
  const fallbackDtype = TORCH_DTYPES[config.torchDtype ?? ''] ?? 'F32';
  const targets = new Set(quantized.names());
  const names = naturalOrder([...new Set([...backbone.names().filter((n) => !targets.has(moduleOf(n))), ...[...targets].map((m) => `${m}.weight`)])]);
  let done = 0;
  const entries: TensorEntry[] = names.map((name) => {
    const module = moduleOf(name);
    if (!targets.has(module)) {
      const info = backbone.info(name);
      return {
        name,
        dtype: info.dtype,
        shape: info.shape,
        data: async () => {
          const bytes = await backbone.readRaw(name);
          options.onTensor?.(++done, names.length);
          return bytes;
        },
      };
    }
    const info = quantized.matrices[module];
    const stored = backbone.has(name) ? backbone.info(name).dtype : undefined;
    const dtype: FloatDtype = info.dtype ?? (isFloatDtype(stored) ? stored : fallbackDtype);
    return {
      name,
      dtype,
      shape: [...info.shape],
      data: async () => {
        let q = await quantized.dequantize(module);
        if (options.transform) q = await options.transform(module, q);
        options.onTensor?.(++done, names.length);
        return encodeF32(q, dtype);
      },
    };
  });
  await writeShardedSafetensors(outDir, 'model', entries, {}, options.maxShardBytes);
  await copyModelAuxFiles(backboneDir, outDir);
}
