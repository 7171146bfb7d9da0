// The learning-rate schedule: linear warm-up to the peak, then cosine or linear decay to a
// floor (or a constant rate). A pure function of the step, so a resumed run needs no state.
//
// Steps are numbered from 1: `step` is the optimizer update about to be applied. Warm-up
// steps 1..W climb peak·step/W (step W reaches the peak; the first update is not wasted at
// lr 0); steps W..total decay with progress p = (step − W)/(total − W) from the peak to the
// floor; past `total` the floor holds.
import type { DecaySchedule } from './config';

export interface LrSchedule {
  peak: number;
  floor: number;
  warmup: number;
  total: number;
  decay: DecaySchedule;
}

export function learningRate(step: number, s: LrSchedule): number {
  if (!Number.isSafeInteger(step) || step < 1) throw new Error(`learningRate: step must be an integer ≥ 1 (got ${step})`);
  if (s.warmup > 0 && step < s.warmup) return (s.peak * step) / s.warmup;
  if (s.decay === 'constant') return s.peak;
  if (step >= s.total) return s.total <= s.warmup ? s.peak : s.floor;
  const p = (step - s.warmup) / (s.total - s.warmup);
  const f = s.decay === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * p)) : 1 - p;
  return s.floor + (s.peak - s.floor) * f;
}

export function scheduleOf(c: { lr: number; minLr: number; warmup: number; steps: number; schedule: DecaySchedule }): LrSchedule {
  return { peak: c.lr, floor: c.minLr, warmup: c.warmup, total: c.steps, decay: c.schedule };
}
