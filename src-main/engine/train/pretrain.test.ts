// The demo model's pretraining (scripts/pretrain-demo.ts) in its --small configuration: the
// training loss falls, and the written Hugging Face folder loads and runs a forward pass.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBytes, generateCorpus, pretrainDemo } from '../../../scripts/pretrain-demo';
import { makeTempDir } from '../../test-support/tiny-model';
import { loadModelWeights } from '../model/weights';
import { Transformer } from '../model/transformer';
import { loadTokenizer } from '../text/tokenizer';

let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-pretrain-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('pretrainDemo --small', () => {
  it('generates the same corpus for the same seed and another for another seed', () => {
    expect(generateCorpus(5, 2000)).toBe(generateCorpus(5, 2000));
    expect(generateCorpus(6, 2000)).not.toBe(generateCorpus(5, 2000));
  });

  it('lowers the training loss and writes a model that loads and runs', async () => {
    const out = join(tmp, 'model');
    const r = await pretrainDemo({ out, dataDir: join(tmp, 'data'), small: true, log: () => {} });
    expect(r.steps).toBe(20);
    const first = r.history.slice(0, 3).reduce((s, h) => s + h.loss, 0) / 3;
    const last = r.history.slice(-3).reduce((s, h) => s + h.loss, 0) / 3;
    expect(last).toBeLessThan(first - 0.5);
    expect(r.finalPpl).toBeLessThan(r.initialPpl);

    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.torch_dtype).toBe('bfloat16');
    const w = await loadModelWeights(out);
    expect(w.config.numLayers).toBe(1);
    const tok = await loadTokenizer(out);
    const text = (await readFile(join(tmp, 'data', 'eval.txt'), 'utf8')).slice(0, 40);
    const ids = await tok.encode(text, { addBos: false });
    expect([...ids]).toEqual([...encodeBytes(text)]);
    const logits = await new Transformer(w).logits(ids);
    expect(logits.length).toBe(ids.length * w.config.vocabSize);
    expect(logits.every((v) => Number.isFinite(v))).toBe(true);
  });
});
