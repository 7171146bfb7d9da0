import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendEval, appendTrainStep, evalMetric, lastPerStep, trainStepMetric } from './metrics';

describe('training metrics', () => {
  it('appends the contract records to metrics.jsonl', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loftq-metrics-'));
    try {
      const time = new Date('2030-01-02T03:04:05.000Z');
      await appendTrainStep(dir, trainStepMetric({ step: 1, loss: 2.5, lr: 1e-4, gradNorm: 0.75, tokensPerS: 1234.5, time }));
      await appendEval(dir, evalMetric({ step: 1, loss: Math.log(20), tokens: 4096, seqLen: 128, time }));
      const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l));
      expect(lines[0]).toEqual({ step: 1, loss: 2.5, lr: 1e-4, grad_norm: 0.75, tokens_per_s: 1234.5, time: '2030-01-02T03:04:05.000Z' });
      expect(Object.keys(lines[0])).toEqual(['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s', 'time']);
      expect(lines[1]).toMatchObject({ step: 1, split: 'eval', tokens: 4096, weights: 'q+lora', protocol: 'rows', seq_len: 128, time: '2030-01-02T03:04:05.000Z' });
      expect(lines[1].eval_ppl).toBeCloseTo(20, 12);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps the last record per step (a resumed run logs some steps twice)', () => {
    const records = [
      { step: 1, loss: 3 },
      { step: 2, loss: 2.9 },
      { step: 2, split: 'eval', eval_ppl: 9, weights: 'q+lora' },
      { step: 2, loss: 2.8 },
      { step: 3, loss: 2.7 },
    ];
    expect(lastPerStep(records)).toEqual([records[0], records[2], records[3], records[4]]);
  });
});
