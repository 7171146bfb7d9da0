// The instant bits/rank planner: from a model's profile (per matrix and bit width ‖W − q(W)‖²
// and the leading singular values of W − q(W)), the error of one LoftQ step for any bits and
// rank is exact by Pythagoras, ‖W − Q − B·A‖² = ‖W − Q‖² − Σ_{i≤r} σᵢ², so every edit of the
// grid or the rank is a few additions per matrix (prefix sums of σ² are built once).
import type { ModelProfile } from '../../src-main/api/contract';

export interface PreparedProfile {
  names: string[];
  shapes: Array<[number, number]>;
  /** By matrix: bits → [‖W − Q‖², prefix sums of σ²…] (index r: the energy of the first r). */
  energy: Array<Map<number, Float64Array>>;
  wSq: Float64Array;
  maxRank: number;
  index: Map<string, number>;
}

export function prepareProfile(p: ModelProfile): PreparedProfile {
  const energy = p.matrices.map((m) => {
    const byBits = new Map<number, Float64Array>();
    for (const [b, e] of Object.entries(m.bits)) {
      const prefix = new Float64Array(e.sv.length + 1);
      for (let i = 0; i < e.sv.length; i++) prefix[i + 1] = prefix[i] + e.sv[i] * e.sv[i];
      const row = new Float64Array(prefix.length + 1);
      row[0] = e.err_sq;
      row.set(prefix, 1);
      byBits.set(Number(b), row);
    }
    return byBits;
  });
  return {
    names: p.matrices.map((m) => m.name),
    shapes: p.matrices.map((m) => m.shape),
    energy,
    wSq: Float64Array.from(p.matrices, (m) => m.w_sq),
    maxRank: p.max_rank,
    index: new Map(p.matrices.map((m, i) => [m.name, i])),
  };
}

/** err of matrix i at `bits` and `rank` after one LoftQ step (NaN beyond what was profiled). */
export function errorAt(p: PreparedProfile, i: number, bits: number, rank: number): number {
  const row = p.energy[i].get(bits);
  if (!row) return NaN;
  const r = Math.min(rank, p.shapes[i][0], p.shapes[i][1]);
  if (r + 2 > row.length) return NaN;
  const residual = Math.max(0, row[0] - row[r + 1]);
  return p.wSq[i] > 0 ? Math.sqrt(residual / p.wSq[i]) : 0;
}

export interface Prediction {
  /** err per target, in the order of `names` given (NaN: not in the profile, or rank too high). */
  errors: Float64Array;
  mean: number;
  worst: { name: string; err: number } | null;
}

export function predict(p: PreparedProfile, names: readonly string[], bits: readonly number[], rank: number): Prediction {
  const errors = new Float64Array(names.length);
  let sum = 0;
  let n = 0;
  let worst: Prediction['worst'] = null;
  for (let k = 0; k < names.length; k++) {
    const i = p.index.get(names[k]);
    const e = i === undefined ? NaN : errorAt(p, i, bits[k], rank);
    errors[k] = e;
    if (!Number.isFinite(e)) continue;
    sum += e;
    n++;
    if (!worst || e > worst.err) worst = { name: names[k], err: e };
  }
  return { errors, mean: n > 0 ? sum / n : NaN, worst };
}

/** Average bits per target weight: codes, one scale per block, and the fp32 adapter when asked. */
export function averageBits(shapes: readonly (readonly [number, number])[], bits: readonly number[], block: number, scaleBits: number, rank: number, withAdapter: boolean): number {
  let params = 0;
  let stored = 0;
  shapes.forEach(([o, i], k) => {
    const n = o * i;
    params += n;
    stored += n * bits[k] + Math.ceil(n / block) * scaleBits + (withAdapter ? rank * (o + i) * 32 : 0);
  });
  return params > 0 ? stored / params : NaN;
}

/**
 * Bits per matrix that minimize the sum of predicted errors within an average-bits budget
 * (adapter included): start everything at the fewest bits, then repeatedly give more bits to
 * the matrix whose error falls most per extra bit stored, while the budget allows. Null when
 * even the fewest bits exceed the budget.
 */
export function allocateBits(
  p: PreparedProfile,
  names: readonly string[],
  choices: readonly number[],
  rank: number,
  block: number,
  scaleBits: number,
  budget: number,
): number[] | null {
  const levels = [...choices].sort((a, b) => a - b);
  const shapes = names.map((n) => p.shapes[p.index.get(n) ?? -1] ?? ([0, 0] as [number, number]));
  const level = names.map(() => 0);
  const bitsOf = () => level.map((l) => levels[l]);
  if (!(averageBits(shapes, bitsOf(), block, scaleBits, rank, true) <= budget)) return null;
  const params = shapes.reduce((s, [o, i]) => s + o * i, 0);
  let used = averageBits(shapes, bitsOf(), block, scaleBits, rank, true) * params;
  for (;;) {
    let best = -1;
    let bestGain = 0;
    for (let k = 0; k < names.length; k++) {
      if (level[k] + 1 >= levels.length) continue;
      const i = p.index.get(names[k]);
      if (i === undefined) continue;
      const n = shapes[k][0] * shapes[k][1];
      const cost = n * (levels[level[k] + 1] - levels[level[k]]);
      if (used + cost > budget * params) continue;
      const gain = (errorAt(p, i, levels[level[k]], rank) - errorAt(p, i, levels[level[k] + 1], rank)) / cost;
      if (gain > bestGain) {
        bestGain = gain;
        best = k;
      }
    }
    if (best < 0) return bitsOf();
    used += shapes[best][0] * shapes[best][1] * (levels[level[best] + 1] - levels[level[best]]);
    level[best]++;
  }
}

/**
 * The rank too: for each candidate rank, the best bits within the budget (allocateBits), and of
 * those the pair with the lowest total predicted error. A higher rank lowers the error but its
 * adapter takes bits from the budget. Null when no candidate fits.
 */
export function allocateBitsAndRank(
  p: PreparedProfile,
  names: readonly string[],
  choices: readonly number[],
  ranks: readonly number[],
  block: number,
  scaleBits: number,
  budget: number,
): { rank: number; bits: number[] } | null {
  let best: { rank: number; bits: number[]; total: number } | null = null;
  for (const rank of ranks) {
    const bits = allocateBits(p, names, choices, rank, block, scaleBits, budget);
    if (!bits) continue;
    const total = predict(p, names, bits, rank).errors.reduce((s, e) => s + e, 0);
    if (Number.isFinite(total) && (!best || total < best.total)) best = { rank, bits, total };
  }
  return best ? { rank: best.rank, bits: best.bits } : null;
}
