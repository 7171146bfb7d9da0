// Derived numbers for comparing runs: per-layer mean errors, perplexities, smoothed curves.
import type { LayerRecord, MetricRecord } from '../../src-main/api/contract';
import { parseModulePath } from './targets';

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
export function latestPerplexity(metrics: readonly MetricRecord[]): Partial<Record<'fp' | 'q' | 'q+lora', number>> {
  const out: Partial<Record<'fp' | 'q' | 'q+lora', number>> = {};
  for (const m of metrics) {
    if ('eval_ppl' in m && typeof m.eval_ppl === 'number') out[m.weights] = m.eval_ppl;
  }
  return out;
}

export function lossCurve(metrics: readonly MetricRecord[]): { step: number; loss: number }[] {
  return metrics.filter((m): m is Extract<MetricRecord, { loss: number }> => 'loss' in m && typeof m.loss === 'number').map((m) => ({ step: m.step, loss: m.loss }));
}

/** Perplexity over training steps for one weight source (evaluations only; the last per step wins). */
export function perplexityCurve(metrics: readonly MetricRecord[], weights: 'fp' | 'q' | 'q+lora'): { step: number; ppl: number }[] {
  const byStep = new Map<number, number>();
  for (const m of metrics) if ('eval_ppl' in m && m.weights === weights && typeof m.eval_ppl === 'number') byStep.set(m.step, m.eval_ppl);
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
