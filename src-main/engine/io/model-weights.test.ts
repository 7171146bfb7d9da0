import { mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../errors';
import { openModelWeights } from './model-weights';
import { makeTempDir, writeTinyModel } from '../../test-support/tiny-model';
import { expectUserError } from '../../test-support/expect-user-error';

let root: string;
beforeAll(async () => {
  root = await makeTempDir();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
async function freshDir(): Promise<string> {
  const d = join(root, `m${n++}`);
  await mkdir(d);
  return d;
}


describe('openModelWeights', () => {
  it('reads a single-file model tensor by tensor', async () => {
    const d = await freshDir();
    const m = await writeTinyModel(d, { dtype: 'BF16' });
    const w = await openModelWeights(d);
    expect(w.files.length).toBe(1);
    expect(new Set(w.names())).toEqual(new Set(m.tensors.keys()));
    const q = m.tensors.get('model.layers.1.self_attn.q_proj.weight');
    expect(w.info('model.layers.1.self_attn.q_proj.weight')).toMatchObject({ dtype: 'BF16', shape: q?.shape });
    expect(await w.readF32('model.layers.1.self_attn.q_proj.weight')).toEqual(q?.values);
    await expectUserError(w.readF32('nope'), /has no tensor "nope"/);
    expect(() => w.info('nope')).toThrow(UserError);
  });

  it('reads a sharded model', async () => {
    const d = await freshDir();
    const m = await writeTinyModel(d, { dtype: 'F16', maxShardBytes: 1500 });
    const w = await openModelWeights(d);
    expect(w.files.length).toBeGreaterThan(2);
    for (const [name, t] of m.tensors) expect(await w.readF32(name)).toEqual(t.values);
    expect(w.totalBytes()).toBe(JSON.parse(await readFile(join(d, 'model.safetensors.index.json'), 'utf8')).metadata.total_size);
  });

  it('validates the index against the shards', async () => {
    const d = await freshDir();
    await writeTinyModel(d, { maxShardBytes: 1500 });
    const indexPath = join(d, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8'));

    const withMap = (weight_map: unknown) => writeFile(indexPath, JSON.stringify({ ...index, weight_map }));
    await withMap({ ...index.weight_map, 'extra.weight': 'model-00001-of-00099.safetensors' });
    await expectUserError(openModelWeights(d), /shard model-00001-of-00099\.safetensors is missing/);
    await withMap({ ...index.weight_map, 'extra.weight': index.weight_map['model.embed_tokens.weight'] });
    await expectUserError(openModelWeights(d), /tensor "extra\.weight" is mapped to model-00001-of-\d+\.safetensors, which does not contain it/);
    await withMap({ 'x.weight': '../escape.safetensors' });
    await expectUserError(openModelWeights(d), /must be a file name in the model folder/);
    await withMap([1]);
    await expectUserError(openModelWeights(d), /missing "weight_map"/);
    await writeFile(indexPath, '{oops');
    await expectUserError(openModelWeights(d), /index\.json: not valid JSON/);
  });

  it('explains a folder without safetensors weights', async () => {
    const d = await freshDir();
    await expectUserError(openModelWeights(d), /no model\.safetensors or model\.safetensors\.index\.json found$/);
    await writeFile(join(d, 'pytorch_model.bin'), 'x');
    await expectUserError(openModelWeights(d), /pytorch_model\.bin weights, which are not supported/);
    await unlink(join(d, 'pytorch_model.bin'));
    await writeFile(join(d, 'consolidated.safetensors'), 'x');
    await expectUserError(openModelWeights(d), /it has consolidated\.safetensors, but the weights must be named/);
    await expectUserError(openModelWeights(join(d, 'missing')), /cannot open model folder .*missing: not found/);
    await expectUserError(openModelWeights(join(d, 'consolidated.safetensors')), /not a folder/);
  });
});
