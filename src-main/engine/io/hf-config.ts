// Hugging Face config.json → a typed, validated ModelConfig for the Llama family. Defaults
// follow the transformers config classes so that a sparse config means what it means there.
import { join } from 'node:path';
import { UserError } from '../errors';
import { readJson } from './json-file';

export const SUPPORTED_ARCHITECTURES = ['llama', 'mistral', 'qwen2'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];
export type TorchDtype = 'float32' | 'float16' | 'bfloat16';

export interface ModelConfig {
  architecture: Architecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  torchDtype: TorchDtype;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** rope_scaling (or a non-default transformers-5 rope_parameters), as given; null if none. */
  ropeScaling: Record<string, unknown> | null;
  /** Biases on q/k/v/o (qwen2: q/k/v always). */
  attentionBias: boolean;
  mlpBias: boolean;
  raw: Record<string, unknown>;
}

const DEFAULT_MAX_POSITIONS: Record<Architecture, number> = { llama: 2048, mistral: 131072, qwen2: 32768 };
const DTYPE_ALIASES: Record<string, TorchDtype> = {
  float32: 'float32',
  float: 'float32',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
};

export async function readModelConfig(modelDir: string): Promise<ModelConfig> {
  const path = join(modelDir, 'config.json');
  return parseModelConfig(await readJson(path), path);
}

/** Validates a parsed config.json; `path` names it in errors. */
export function parseModelConfig(raw: unknown, path = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new UserError(`${path}: not a JSON object`);
  }
  const c = raw as Record<string, unknown>;
  const modelType = c.model_type;
  if (typeof modelType !== 'string') throw new UserError(`${path}: missing "model_type"`);
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(modelType)) {
    throw new UserError(
      `${path}: model_type "${modelType}" is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`,
    );
  }
  const architecture = modelType as Architecture;

  const posInt = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (v === undefined) throw new UserError(`${path}: missing "${key}"`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new UserError(`${path}: "${key}" must be a positive integer (got ${JSON.stringify(v)})`);
    }
    return v;
  };
  const posNum = (v: unknown, key: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new UserError(`${path}: "${key}" must be a positive number (got ${JSON.stringify(v)})`);
    }
    return v;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'boolean') throw new UserError(`${path}: "${key}" must be true or false`);
    return v;
  };

  const hiddenSize = posInt('hidden_size');
  const numHeads = posInt('num_attention_heads');
  const numKvHeads = posInt('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new UserError(
      `${path}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  let headDim: number;
  if (c.head_dim !== undefined && c.head_dim !== null) {
    headDim = posInt('head_dim');
  } else {
    if (hiddenSize % numHeads !== 0) {
      throw new UserError(`${path}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
    }
    headDim = hiddenSize / numHeads;
  }
  // RoPE rotates pairs of values within a head.
  if (headDim % 2 !== 0) throw new UserError(`${path}: head_dim ${headDim} is odd; rotary position embeddings need an even head size`);

  // transformers 5 renamed torch_dtype to dtype and moved rope_theta into rope_parameters.
  const dtypeRaw = c.torch_dtype ?? c.dtype ?? 'float32';
  const torchDtype = typeof dtypeRaw === 'string' ? DTYPE_ALIASES[dtypeRaw] : undefined;
  if (!torchDtype) {
    throw new UserError(
      `${path}: torch_dtype ${JSON.stringify(dtypeRaw)} is not supported (supported: float32, float16, bfloat16)`,
    );
  }
  const ropeParams = isObject(c.rope_parameters) ? c.rope_parameters : undefined;
  const ropeTheta = posNum(c.rope_theta ?? ropeParams?.rope_theta ?? 10000, 'rope_theta');
  let ropeScaling: Record<string, unknown> | null = null;
  if (isObject(c.rope_scaling)) ropeScaling = c.rope_scaling;
  else if (ropeParams && ropeParams.rope_type !== undefined && ropeParams.rope_type !== 'default') {
    ropeScaling = ropeParams;
  }

  return {
    architecture,
    hiddenSize,
    intermediateSize: posInt('intermediate_size'),
    numLayers: posInt('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: posInt('vocab_size'),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    torchDtype,
    maxPositionEmbeddings: posInt('max_position_embeddings', DEFAULT_MAX_POSITIONS[architecture]),
    rmsNormEps: posNum(c.rms_norm_eps ?? 1e-6, 'rms_norm_eps'),
    ropeTheta,
    ropeScaling,
    // Qwen2 has no attention_bias key: its q/k/v projections always carry biases.
    attentionBias: bool('attention_bias', architecture === 'qwen2'),
    mlpBias: bool('mlp_bias', false),
    raw: c,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
