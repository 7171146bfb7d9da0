// `loftq demo`: quantize the bundled demo model with QLoRA and LoftQ at 2 and 4 bits and
// print the per-layer init error side by side.
import { resolve } from 'node:path';
import { UserError } from '../../engine/errors';
import { runQuantize } from '../../engine/jobs/quantize-job';
import { QUANTIZE_DEFAULTS } from '../../engine/jobs/quantize-options';
import type { RunRecord } from '../../engine/runs/run-dir';
import { readLayers } from '../../engine/runs/run-dir';
import type { Output } from '../output';
import { demoModelPath } from '../paths';
import { formatTable } from '../table';

export function demoModelDir(): string {
  const dir = demoModelPath();
  if (!dir) throw new UserError('the demo model is missing: run `npx tsx scripts/make-demo-model.ts` to create assets/demo-model');
  return dir;
}

const CONFIGS = [
  { method: 'qlora', bits: 2 },
  { method: 'loftq', bits: 2 },
  { method: 'qlora', bits: 4 },
  { method: 'loftq', bits: 4 },
] as const;

export async function demoCommand(runsDir: string, out: Output, signal: AbortSignal): Promise<void> {
  const model = demoModelDir();
  const runs: Array<{ label: string; dir: string; record: RunRecord }> = [];
  for (const c of CONFIGS) {
    const dir = resolve(runsDir, 'demo', `${c.method}-${c.bits}bit`);
    const label = `${c.method === 'qlora' ? 'QLoRA' : 'LoftQ'} ${c.bits}-bit`;
    if (!out.json) process.stderr.write(`${label} → ${dir}\n`);
    const record = await runQuantize(
      { ...QUANTIZE_DEFAULTS, model, out: dir, method: c.method, bits: c.bits, rank: 16, alpha: 16, iters: 5, force: true },
      { signal, onEvent: (e) => out.event(e) },
    );
    out.finish();
    runs.push({ label, dir, record });
  }
  const layers = await Promise.all(runs.map((r) => readLayers(r.dir)));
  const rows = layers[0].map((l, i) => [l.name.replace(/^model\.layers\./, 'L').replace('.self_attn.', '.').replace('.mlp.', '.'), ...layers.map((ls) => ls[i].err_init.toFixed(4))]);
  const means = layers.map((ls) => ls.reduce((s, l) => s + l.err_init, 0) / ls.length);
  out.result(
    { model, runs: runs.map((r, i) => ({ label: r.label, run: r.dir, mean_err_init: means[i], seconds: r.record.timings.total_s })) },
    () => {
      const gain = (q: number, l: number) => `${(100 * (1 - l / q)).toFixed(0)}%`;
      return (
        `\nRelative init error ‖W − Q − s·B·A‖/‖W‖ per matrix (demo model, rank 16, LoftQ 5 steps):\n\n` +
        formatTable(['matrix', ...runs.map((r) => r.label)], [...rows, ['mean', ...means.map((m) => m.toFixed(4))]]) +
        `\nLoftQ removes ${gain(means[0], means[1])} of QLoRA's error at 2 bits and ${gain(means[2], means[3])} at 4 bits.\n` +
        `Runs: ${resolve(runsDir, 'demo')}\n`
      );
    },
  );
}
