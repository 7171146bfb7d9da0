// The planner's budget mode: bits per matrix (and, for LoftQ, the rank) that minimise the sum of
// predicted errors within an average-bits budget, adapter included. Greedy: start everything at
// the fewest bits, then give more bits to the matrix whose error falls most per extra bit
// stored, while the budget allows. A budget outside what the choices can reach (below the
// fewest bits everywhere, or above the most bits everywhere) is refused with the range. Pure:
// the engine's CLI and the dashboard plan with this one copy.
import { averageBits } from './average-bits';
import { errorAt, predict, type PlanMethod, type Prediction, type PreparedProfile } from './planner';

export interface BudgetRequest {
  profile: PreparedProfile;
  /** The targets, in order. */
  names: readonly string[];
  /** The bit widths a matrix may get. */
  choices: readonly number[];
  block: number;
  /** Bits of a block's scale (average-bits.ts: scaleBitsOf). */
  scaleBits: number;
  method: PlanMethod;
  /** The run's rank, or (LoftQ) the ranks the planner may choose from. */
  rank: number | readonly number[];
  /** Average bits per target weight, adapter included. */
  budget: number;
}

export type BudgetPlan =
  | { ok: true; bits: number[]; rank: number; average: number; prediction: Prediction }
  | { ok: false; reason: string; range?: { min: number; max: number } };

/** "2.53 to 8.53 bits per weight" (the CLI's words; the app converts to its unit). */
export function rangeText(range: { min: number; max: number }): string {
  return `${range.min.toFixed(2)} to ${range.max.toFixed(2)} bits per weight`;
}

/** The averages the choices can reach: the fewest bits at the smallest rank, the most at the largest. */
export function budgetRange(shapes: readonly (readonly [number, number])[], choices: readonly number[], ranks: readonly number[], block: number, scaleBits: number): { min: number; max: number } {
  const fewest = Math.min(...choices);
  const most = Math.max(...choices);
  return {
    min: averageBits(shapes, shapes.map(() => fewest), block, scaleBits, Math.min(...ranks)),
    max: averageBits(shapes, shapes.map(() => most), block, scaleBits, Math.max(...ranks)),
  };
}

function shapesOf(p: PreparedProfile, names: readonly string[]): Array<[number, number]> | string {
  const out: Array<[number, number]> = [];
  for (const n of names) {
    const i = p.index.get(n);
    if (i === undefined) return n;
    out.push(p.shapes[i]);
  }
  return out;
}

/** Bits per matrix at one rank within the budget, or null when even the fewest bits exceed it. */
export function allocateBits(p: PreparedProfile, names: readonly string[], shapes: readonly [number, number][], r: Omit<BudgetRequest, 'profile' | 'names' | 'rank'>, rank: number): number[] | null {
  const levels = [...new Set(r.choices)].sort((a, b) => a - b);
  const level = names.map(() => 0);
  const params = shapes.reduce((s, [o, i]) => s + o * i, 0);
  let used = averageBits(shapes, names.map(() => levels[0]), r.block, r.scaleBits, rank) * params;
  if (!(used <= r.budget * params * (1 + 1e-12))) return null;
  const err = (k: number, l: number) => errorAt(p, p.index.get(names[k])!, levels[l], rank, r.method);
  for (;;) {
    let best = -1;
    let bestGain = 0;
    for (let k = 0; k < names.length; k++) {
      if (level[k] + 1 >= levels.length) continue;
      const cost = shapes[k][0] * shapes[k][1] * (levels[level[k] + 1] - levels[level[k]]);
      if (used + cost > r.budget * params * (1 + 1e-12)) continue;
      const gain = (err(k, level[k]) - err(k, level[k] + 1)) / cost;
      if (gain > bestGain) {
        bestGain = gain;
        best = k;
      }
    }
    if (best < 0) return level.map((l) => levels[l]);
    used += shapes[best][0] * shapes[best][1] * (levels[level[best] + 1] - levels[level[best]]);
    level[best]++;
  }
}

/**
 * The plan for a budget: at the given rank, or (LoftQ) at whichever of the given ranks gives
 * the lowest total predicted error with its own best bits — a higher rank lowers the error,
 * but its adapter takes bits from the budget.
 */
export function planBudget(r: BudgetRequest): BudgetPlan {
  const ranks = typeof r.rank === 'number' ? [r.rank] : [...r.rank];
  if (ranks.length === 0 || r.choices.length === 0) return { ok: false, reason: 'no rank or bit width to choose from' };
  if (r.method === 'qlora' && ranks.length > 1) {
    return { ok: false, reason: "QLoRA's initial error does not depend on the rank (B = 0): choose the rank for fine-tuning, then allocate the bits" };
  }
  const shapes = shapesOf(r.profile, r.names);
  if (typeof shapes === 'string') return { ok: false, reason: `the profile has no ${shapes}: profile this model again` };
  if (r.method === 'loftq') {
    const beyond = ranks.filter((k) => k > r.profile.maxRank);
    if (beyond.length === ranks.length) return { ok: false, reason: `the profile has singular values up to rank ${r.profile.maxRank}; profile again with a larger maximum rank to plan rank ${Math.min(...beyond)}` };
    ranks.splice(0, ranks.length, ...ranks.filter((k) => k <= r.profile.maxRank));
  }
  const range = budgetRange(shapes, r.choices, ranks, r.block, r.scaleBits);
  if (!Number.isFinite(r.budget) || r.budget < range.min * (1 - 1e-12) || r.budget > range.max * (1 + 1e-12)) {
    return { ok: false, reason: `a budget of ${Number(r.budget.toPrecision(6))} bits per weight is outside what these choices reach: ${rangeText(range)}`, range };
  }
  let best: { rank: number; bits: number[]; total: number; prediction: Prediction } | null = null;
  for (const rank of ranks) {
    const bits = allocateBits(r.profile, r.names, shapes, r, rank);
    if (!bits) continue;
    const prediction = predict(r.profile, r.names, bits, rank, r.method);
    const total = prediction.errors.reduce((s, e) => s + e, 0);
    if (Number.isFinite(total) && (!best || total < best.total)) best = { rank, bits, total, prediction };
  }
  if (!best) return { ok: false, reason: `no allocation fits: ${rangeText(range)}`, range };
  return { ok: true, bits: best.bits, rank: best.rank, average: averageBits(shapes, best.bits, r.block, r.scaleBits, best.rank), prediction: best.prediction };
}

/** The ranks the planner chooses from: powers of two up to the profile's rank and the smallest matrix side. */
export function candidateRanks(maxRank: number, smallestSide: number): number[] {
  return [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].filter((r) => r <= maxRank && r <= smallestSide);
}
