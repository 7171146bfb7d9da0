// The fine-tuning tests' fixture: a generated 2-layer model and byte-level tokenizer, a short
// strictly periodic text (easy to learn, so a few steps visibly lower the loss), and a 2-bit
// LoftQ run of the model to copy and train.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loftq } from './cli';
import { writeTinyModel } from './tiny-model';
import { byteLevelBpe, writeTokenizer } from './tokenizer-fixtures';

export interface TrainFixture {
  /** The quantized run (copy it before training). */
  base: string;
  data: string;
}

export async function writeTrainFixture(tmp: string, o: { hidden: number; intermediate: number; quantizeArgs?: string[] }): Promise<TrainFixture> {
  const model = join(tmp, 'model');
  await writeTinyModel(model, { layers: 2, hidden: o.hidden, heads: 4, kvHeads: 2, intermediate: o.intermediate, vocab: 272, seed: 7, std: 0.15, configOverrides: { max_position_embeddings: 64 } });
  await writeTokenizer(model, byteLevelBpe());
  const words = ['hello', 'world', 'hell', 'or', 'low'];
  const data = join(tmp, 'data.txt');
  writeFileSync(data, Array.from({ length: 160 }, (_, i) => words[i % words.length]).join(' '));
  const base = join(tmp, 'base');
  const q = loftq('quantize', model, '--out', base, '--bits', '2', '--rank', '4', '--iters', '2', ...(o.quantizeArgs ?? []));
  if (q.code !== 0) throw new Error(`the fixture's quantize failed: ${q.stderr}`);
  return { base, data };
}
