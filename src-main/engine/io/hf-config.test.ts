import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../errors';
import { parseModelConfig, readModelConfig } from './hf-config';
import { makeTempDir } from '../../test-support/tiny-model';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = {
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 3,
  num_attention_heads: 8,
  vocab_size: 100,
};

function userErrorOf(f: () => unknown): UserError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

describe('readModelConfig', () => {
  it('parses a Llama config.json with transformers defaults filled in', async () => {
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...base, torch_dtype: 'bfloat16', rope_theta: 500000 }));
    const c = await readModelConfig(dir);
    expect(c).toMatchObject({
      architecture: 'llama',
      hiddenSize: 64,
      intermediateSize: 172,
      numLayers: 3,
      numHeads: 8,
      numKvHeads: 8,
      headDim: 8,
      vocabSize: 100,
      tieWordEmbeddings: false,
      torchDtype: 'bfloat16',
      maxPositionEmbeddings: 2048,
      rmsNormEps: 1e-6,
      ropeTheta: 500000,
      ropeScaling: null,
      attentionBias: false,
      mlpBias: false,
    });
    expect(c.raw.model_type).toBe('llama');
  });

  it('reads GQA, explicit head_dim, qwen2 biases and transformers-5 field names', () => {
    const q = parseModelConfig({ ...base, model_type: 'qwen2', num_key_value_heads: 2, head_dim: 16, tie_word_embeddings: true });
    expect(q).toMatchObject({ architecture: 'qwen2', numKvHeads: 2, headDim: 16, attentionBias: true, tieWordEmbeddings: true });
    expect(parseModelConfig({ ...base, model_type: 'qwen2', attention_bias: false }).attentionBias).toBe(false);
    const m = parseModelConfig({ ...base, model_type: 'mistral', head_dim: null, dtype: 'float16', rope_parameters: { rope_type: 'default', rope_theta: 1e6 } });
    expect(m).toMatchObject({ architecture: 'mistral', headDim: 8, torchDtype: 'float16', ropeTheta: 1e6, ropeScaling: null, maxPositionEmbeddings: 131072 });
    const scaled = parseModelConfig({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } });
    expect(scaled.ropeScaling).toEqual({ rope_type: 'llama3', factor: 8 });
  });

  it('names an unsupported architecture and the supported list', () => {
    const e = userErrorOf(() => parseModelConfig({ ...base, model_type: 'gpt2' }, 'm/config.json'));
    expect(e.message).toBe('m/config.json: model_type "gpt2" is not supported (supported: llama, mistral, qwen2)');
  });

  it('rejects missing or invalid fields', () => {
    expect(userErrorOf(() => parseModelConfig({ ...base, model_type: undefined })).message).toMatch(/missing "model_type"/);
    expect(userErrorOf(() => parseModelConfig({ ...base, hidden_size: undefined })).message).toMatch(/missing "hidden_size"/);
    expect(userErrorOf(() => parseModelConfig({ ...base, num_hidden_layers: 2.5 })).message).toMatch(
      /"num_hidden_layers" must be a positive integer \(got 2\.5\)/,
    );
    expect(userErrorOf(() => parseModelConfig({ ...base, num_key_value_heads: 3 })).message).toMatch(/not a multiple/);
    expect(userErrorOf(() => parseModelConfig({ ...base, hidden_size: 60 })).message).toMatch(/not divisible/);
    expect(userErrorOf(() => parseModelConfig({ ...base, torch_dtype: 'float8_e4m3fn' })).message).toMatch(/torch_dtype/);
    expect(userErrorOf(() => parseModelConfig({ ...base, rms_norm_eps: -1 })).message).toMatch(/rms_norm_eps/);
    expect(userErrorOf(() => parseModelConfig([base])).message).toMatch(/not a JSON object/);
  });

  it('reports a missing or malformed config.json', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await expect(readModelConfig(empty)).rejects.toThrow(/cannot read .*empty\/config\.json: not found/);
    await writeFile(join(empty, 'config.json'), '{"model_type": llama}');
    await expect(readModelConfig(empty)).rejects.toThrow(UserError);
    await expect(readModelConfig(empty)).rejects.toThrow(/config\.json: not valid JSON/);
  });
});
