// `loftq demo`: quantize the bundled demo model with QLoRA and LoftQ at 2 and 4 bits and
// print the per-layer init error side by side; with the demo data (assets/demo-data), also
// the perplexity story: full precision, and QLoRA vs LoftQ at 2 bits before and after a short
// fine-tuning of their adapters.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../../engine/errors';
import { runEval } from '../../engine/jobs/eval-job';
import { runQuantize } from '../../engine/jobs/quantize-job';
import { QUANTIZE_DEFAULTS } from '../../engine/jobs/quantize-options';
import { runTrain } from '../../engine/jobs/train-job';
import type { RunRecord } from '../../engine/runs/run-dir';
import { readLayers } from '../../engine/runs/run-dir';
import type { Output } from '../output';
import { demoModelPath, findUp } from '../paths';
import { formatTable } from '../table';

export function demoModelDir(): string {
  const dir = demoModelPath();
  if (!dir) throw new UserError('the demo model is missing: run `npx tsx scripts/pretrain-demo.ts` to create assets/demo-model');
  return dir;
}

const CONFIGS = [
  { method: 'qlora', bits: 2 },
  { method: 'loftq', bits: 2 },
  { method: 'qlora', bits: 4 },
  { method: 'loftq', bits: 4 },
] as const;

const label = (method: string, bits: number) => `${method === 'qlora' ? 'QLoRA' : 'LoftQ'} ${bits}-bit`;

/** Short, fixed fine-tuning of the demo: enough steps for the adapters to matter. */
const DEMO_TRAIN = { steps: 60, lr: 2e-3, batch: 4, seqLen: 128, evalEvery: 60, checkpointEvery: 60, warmup: 6 };

export async function demoCommand(runsDir: string, out: Output, signal: AbortSignal): Promise<void> {
  const model = demoModelDir();
  // Where each kind of work ran (the jobs choose the GPU when one answers), for the summary.
  const ranOn = { quantize: new Set<string>(), eval: new Set<string>(), train: new Set<string>() };
  const watch = (e: Parameters<Output['event']>[0]) => {
    const where = (e as { where?: unknown }).where;
    if (typeof where === 'string' && (e.type === 'eval' || e.type === 'train')) ranOn[e.type].add(where);
    out.event(e);
  };
  const runs: Array<{ label: string; dir: string; method: string; bits: number; record: RunRecord }> = [];
  for (const c of CONFIGS) {
    const dir = resolve(runsDir, 'demo', `${c.method}-${c.bits}bit`);
    if (!out.json) process.stderr.write(`${label(c.method, c.bits)} → ${dir}\n`);
    const record = await runQuantize(
      { ...QUANTIZE_DEFAULTS, model, out: dir, method: c.method, bits: c.bits, rank: 16, alpha: 16, iters: 5, force: true },
      { signal, onEvent: (e) => out.event(e) },
    );
    out.finish();
    const device = record.device as { name?: unknown } | undefined;
    if (typeof device?.name === 'string') ranOn.quantize.add(device.name);
    runs.push({ label: label(c.method, c.bits), dir, method: c.method, bits: c.bits, record });
  }
  const layers = await Promise.all(runs.map((r) => readLayers(r.dir)));
  const rows = layers[0].map((l, i) => [l.name.replace(/^model\.layers\./, 'L').replace('.self_attn.', '.').replace('.mlp.', '.'), ...layers.map((ls) => ls[i].err_init.toFixed(4))]);
  const means = layers.map((ls) => ls.reduce((s, l) => s + l.err_init, 0) / ls.length);

  // The perplexity story needs the demo's text (made with the pretrained demo model).
  const data = findUp(join('assets', 'demo-data'), 'eval.txt');
  const story: Array<{ label: string; fp: number; q: number; before: number; after: number }> = [];
  if (data && existsSync(join(data, 'train.txt'))) {
    const evalText = join(data, 'eval.txt');
    for (const r of runs.filter((x) => x.bits === 2)) {
      const before = await runEval({ target: r.dir, data: evalText, seqLen: 128, stride: 64, signal, onEvent: watch });
      if (!out.json) process.stderr.write(`fine-tuning ${r.label} (${DEMO_TRAIN.steps} steps)\n`);
      await runTrain({ run: r.dir, data: join(data, 'train.txt'), ...DEMO_TRAIN, signal, onEvent: watch });
      const after = await runEval({ target: r.dir, data: evalText, seqLen: 128, stride: 64, signal, onEvent: watch });
      out.finish();
      const ppl = (res: typeof before, w: string) => res.results.find((x) => x.weights === w)?.ppl ?? NaN;
      story.push({ label: r.label, fp: ppl(before, 'fp'), q: ppl(before, 'q'), before: ppl(before, 'q+lora'), after: ppl(after, 'q+lora') });
    }
  }

  out.result(
    {
      model,
      runs: runs.map((r, i) => ({ label: r.label, run: r.dir, mean_err_init: means[i], seconds: r.record.timings.total_s })),
      perplexity: story,
      ran_on: { quantize: [...ranOn.quantize], eval: [...ranOn.eval], train: [...ranOn.train] },
    },
    () => {
      const gain = (q: number, l: number) => `${(100 * (1 - l / q)).toFixed(0)}%`;
      let text =
        `\nRelative init error ‖W − Q − s·B·A‖/‖W‖ per matrix (demo model, rank 16, LoftQ 5 steps):\n\n` +
        formatTable(['matrix', ...runs.map((r) => r.label)], [...rows, ['mean', ...means.map((m) => m.toFixed(4))]]) +
        `\nLoftQ removes ${gain(means[0], means[1])} of QLoRA's error at 2 bits and ${gain(means[2], means[3])} at 4 bits.\n`;
      if (story.length > 0) {
        text +=
          `\nPerplexity on held-out demo text (window 128, stride 64); adapters fine-tuned ${DEMO_TRAIN.steps} steps on the demo training text:\n\n` +
          formatTable(
            ['init', 'full precision', 'Q alone', 'Q + adapter at init', 'Q + adapter fine-tuned'],
            story.map((s) => [s.label, s.fp.toFixed(2), s.q.toFixed(2), s.before.toFixed(2), s.after.toFixed(2)]),
          );
      } else {
        text += '\n(assets/demo-data is missing: the perplexity comparison needs the pretrained demo model and its texts)\n';
      }
      const places = (['quantize', 'eval', 'train'] as const).filter((k) => ranOn[k].size > 0).map((k) => `${k} on ${[...ranOn[k]].join(', ')}`);
      return text + (places.length ? `\nRan: ${places.join('; ')}\n` : '\n') + `Runs: ${resolve(runsDir, 'demo')}\n`;
    },
  );
}
