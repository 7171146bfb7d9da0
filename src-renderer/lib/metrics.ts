// Derived numbers for comparing runs: per-layer mean errors, perplexities, smoothed curves.
import type { LayerRecord, MetricRecord } from '../../src-main/api/contract';
import { parseModulePath } from '../../src-main/engine/rules/modules';

/** Mean err_init (or err_q) of each decoder layer, by layer number. */
export function perLayerMean(layers: readonly LayerRecord[], key: 'err_init' | 'err_q'): Map<number, number> {
  const sums = new Map<number, { s: number; n: number }>();
  for (const l of layers) {
    const p = parseModulePath(l.name);
    if (!p) continue;
    const e = sums.get(p.layer) ?? { s: 0, n: 0 };
    e.s += l[key];
    e.n += 1;
    sums.set(p.layer, e);
  }
  return new Map([...sums].sort((a, b) => a[0] - b[0]).map(([k, v]) => [k, v.s / v.n]));
}

/** The latest perplexity per weight source (fp, q, q+lora) in a run's metrics. */
type EvalRecord = Extract<MetricRecord, { eval_ppl: number }>;

const evalRecords = (metrics: readonly MetricRecord[]): EvalRecord[] =>
  metrics.filter((m): m is EvalRecord => 'eval_ppl' in m && typeof m.eval_ppl === 'number');

/**
 * Evaluations of one kind only: `loftq eval` records name their data and window; the training
 * loop's held-out evaluations do not. Mixing them would compare numbers on different text.
 */
function groupOf(m: EvalRecord): string {
  return typeof m.data === 'string' ? `${m.data}|${String(m.seq_len)}|${String(m.stride)}` : 'training';
}

/** The latest `loftq eval` of a run (fp / q / q+lora on one dataset), else training's held-out q+lora. */
export function latestPerplexity(metrics: readonly MetricRecord[]): Partial<Record<'fp' | 'q' | 'q+lora', number>> {
  const evals = evalRecords(metrics);
  const measured = evals.filter((m) => groupOf(m) !== 'training');
  const pool = measured.length > 0 ? measured : evals;
  if (pool.length === 0) return {};
  const group = groupOf(pool[pool.length - 1]);
  const out: Partial<Record<'fp' | 'q' | 'q+lora', number>> = {};
  for (const m of pool) if (groupOf(m) === group) out[m.weights] = m.eval_ppl;
  return out;
}

/** How a group of evaluations was measured, in words (labels next to the numbers). */
function protocolOf(m: EvalRecord): string {
  const seq = typeof m.seq_len === 'number' ? m.seq_len : null;
  if (typeof m.data === 'string') {
    const file = m.data.split(/[\\/]/).pop();
    return `sliding window ${String(seq)}, stride ${String(m.stride)}, ${file}`;
  }
  return seq !== null ? `training's held-out rows of ${seq} tokens, no overlap` : "training's held-out rows";
}

/** The protocol of the numbers latestPerplexity returns, or null when there are none. */
export function latestPerplexityLabel(metrics: readonly MetricRecord[]): string | null {
  const evals = evalRecords(metrics);
  const measured = evals.filter((m) => groupOf(m) !== 'training');
  const pool = measured.length > 0 ? measured : evals;
  return pool.length > 0 ? protocolOf(pool[pool.length - 1]) : null;
}

/** The protocol of perplexityCurve's points, or null when there are none. */
export function perplexityCurveLabel(metrics: readonly MetricRecord[], weights: 'fp' | 'q' | 'q+lora'): string | null {
  const evals = evalRecords(metrics).filter((m) => m.weights === weights);
  const training = evals.filter((m) => groupOf(m) === 'training');
  const pool = training.length > 0 ? training : evals;
  return pool.length > 0 ? protocolOf(pool[pool.length - 1]) : null;
}

export function lossCurve(metrics: readonly MetricRecord[]): { step: number; loss: number }[] {
  return metrics.filter((m): m is Extract<MetricRecord, { loss: number }> => 'loss' in m && typeof m.loss === 'number').map((m) => ({ step: m.step, loss: m.loss }));
}

/**
 * Perplexity over training steps for one weight source: the training loop's held-out
 * evaluations when there are any, else the latest `loftq eval` dataset's (the last per step wins).
 */
export function perplexityCurve(metrics: readonly MetricRecord[], weights: 'fp' | 'q' | 'q+lora'): { step: number; ppl: number }[] {
  const evals = evalRecords(metrics).filter((m) => m.weights === weights);
  const training = evals.filter((m) => groupOf(m) === 'training');
  const pool = training.length > 0 ? training : evals.filter((m) => evals.length > 0 && groupOf(m) === groupOf(evals[evals.length - 1]));
  const byStep = new Map<number, number>();
  for (const m of pool) byStep.set(m.step, m.eval_ppl);
  return [...byStep].sort((a, b) => a[0] - b[0]).map(([step, ppl]) => ({ step, ppl }));
}

/** Exponential moving average with weight `alpha` in [0, 1) on the past (0 = raw), debiased. */
export function smooth(values: readonly number[], alpha: number): number[] {
  if (alpha <= 0) return [...values];
  let avg = 0;
  let weight = 0;
  return values.map((v) => {
    avg = alpha * avg + (1 - alpha) * v;
    weight = alpha * weight + (1 - alpha);
    return avg / weight;
  });
}
