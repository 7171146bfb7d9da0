import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../errors';
import { readModelConfig } from './hf-config';
import { openModelWeights } from './model-weights';
import { discoverTargets, parseTargets, type WeightIndex } from './targets';
import { makeTempDir, writeTinyModel, type TinyModelOptions } from '../../test-support/tiny-model';

let root: string;
beforeAll(async () => {
  root = await makeTempDir();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
async function tiny(o: TinyModelOptions = {}) {
  const dir = join(root, `m${n++}`);
  await mkdir(dir);
  await writeTinyModel(dir, o);
  return { dir, weights: await openModelWeights(dir), config: await readModelConfig(dir) };
}

function userErrorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('discoverTargets', () => {
  it('finds every linear weight of a tiny llama, ordered by layer then q,k,v,o,gate,up,down', async () => {
    const { weights, config } = await tiny({ layers: 3, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24 });
    const t = discoverTargets(weights, config, 'all-linear');
    expect(t.length).toBe(21);
    expect(t.slice(0, 7).map((x) => x.module)).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    expect(t.map((x) => x.layer)).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2]);
    expect(t[1]).toEqual({
      name: 'model.layers.0.self_attn.k_proj',
      weight: 'model.layers.0.self_attn.k_proj.weight',
      layer: 0,
      module: 'k_proj',
      shape: [8, 16],
    });
    expect(t[6]).toMatchObject({ name: 'model.layers.0.mlp.down_proj', shape: [16, 24] });
    expect(t.some((x) => x.weight.includes('embed') || x.weight.includes('lm_head'))).toBe(false);
  });

  it('selects modules by short name in canonical order', async () => {
    const { weights, config } = await tiny();
    const t = discoverTargets(weights, config, ['v_proj', 'q_proj']);
    expect(t.map((x) => x.name)).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
    ]);
    expect(userErrorOf(() => discoverTargets(weights, config, ['q_proj', 'qkv_proj', 'fc1']))).toMatch(
      /unknown target modules qkv_proj, fc1; available: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/,
    );
    expect(userErrorOf(() => discoverTargets(weights, config, []))).toMatch(/no target modules/);
  });

  it('never targets qwen2 biases', async () => {
    const { weights, config } = await tiny({ architecture: 'qwen2', dtype: 'BF16' });
    expect(config.attentionBias).toBe(true);
    expect(weights.has('model.layers.0.self_attn.q_proj.bias')).toBe(true);
    const t = discoverTargets(weights, config, 'all-linear');
    expect(t.length).toBe(14);
    for (const x of t) expect(x.weight.endsWith('.weight')).toBe(true);
  });

  it('checks shapes, layer count, dtype and presence against the config', async () => {
    const { dir, weights, config } = await tiny();
    expect(userErrorOf(() => discoverTargets(weights, { ...config, intermediateSize: 32 }, 'all-linear'))).toBe(
      `${dir}: tensor "model.layers.0.mlp.gate_proj.weight" has shape [24, 16] but config.json implies [32, 16]`,
    );
    expect(userErrorOf(() => discoverTargets(weights, { ...config, numKvHeads: 4 }, ['k_proj']))).toMatch(
      /k_proj\.weight" has shape \[8, 16\] but config.json implies \[16, 16\]/,
    );
    expect(userErrorOf(() => discoverTargets(weights, { ...config, numLayers: 1 }, 'all-linear'))).toMatch(
      /tensor "model\.layers\.1\..*" but config\.json says num_hidden_layers is 1/,
    );
    expect(userErrorOf(() => discoverTargets(weights, { ...config, numLayers: 3 }, 'all-linear'))).toMatch(
      /the model has no tensor "model\.layers\.2\.self_attn\.q_proj\.weight"/,
    );

    // A stand-in weight index: an int8 (already quantized) weight and a missing module.
    const fake = (dtype: 'I8' | 'F32', drop?: string): WeightIndex => ({
      names: () => weights.names().filter((x) => x !== drop),
      info: (name) => ({ ...weights.info(name), dtype }),
    });
    expect(userErrorOf(() => discoverTargets(fake('I8'), config, ['q_proj']))).toMatch(/has dtype I8; expected a floating-point/);
    expect(userErrorOf(() => discoverTargets(fake('F32', 'model.layers.1.mlp.up_proj.weight'), config, 'all-linear'))).toMatch(
      /no tensor "model\.layers\.1\.mlp\.up_proj\.weight"/,
    );
    const none: WeightIndex = { names: () => ['model.embed_tokens.weight'], info: () => ({ dtype: 'F32', shape: [1, 1] }) };
    expect(userErrorOf(() => discoverTargets(none, config, 'all-linear'))).toMatch(/no Llama-style linear weights/);
  });

  it('works from a config.json whose shapes disagree with the weights', async () => {
    const { dir } = await tiny();
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 32 }),
    );
    // No num_key_value_heads → MHA, but the weights are GQA with 2 kv heads.
    const [weights, config] = [await openModelWeights(dir), await readModelConfig(dir)];
    expect(userErrorOf(() => discoverTargets(weights, config, 'all-linear'))).toMatch(/k_proj\.weight" has shape \[8, 16\]/);
  });
});

describe('parseTargets', () => {
  it('parses all-linear and comma lists', () => {
    expect(parseTargets('all-linear')).toBe('all-linear');
    expect(parseTargets(' q_proj, v_proj,,q_proj ')).toEqual(['q_proj', 'v_proj']);
    expect(userErrorOf(() => parseTargets('q_proj,attn'))).toMatch(/--targets: unknown module attn; choose from all-linear, q_proj/);
    expect(userErrorOf(() => parseTargets(' , '))).toMatch(/--targets: expected all-linear or a list/);
  });
});
