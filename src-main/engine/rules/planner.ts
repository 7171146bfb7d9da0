// The planner's prediction: from a model's profile (per target matrix and bit width ‖W − q(W)‖²
// and the leading singular values σᵢ of W − q(W)), the initial error err = ‖W − Q − s·B·A‖/‖W‖
// each method will have, for any bits and rank, without running anything:
//   QLoRA  B = 0, so err = ‖W − Q‖/‖W‖ whatever the rank;
//   LoftQ  one alternating step (T = 1): Q = q(W) and s·B·A the best rank-r approximation of
//          W − Q, so by Pythagoras ‖W − Q − s·B·A‖² = ‖W − Q‖² − Σ_{i≤r} σᵢ² (more steps
//          only lower it).
// Prefix sums of σ² are built once per profile, so a prediction of every matrix is a few
// additions each: the dashboard reruns it on every edit. Pure.

export type PlanMethod = 'qlora' | 'loftq';

export interface BitsProfile {
  /** ‖W − q(W)‖²_F. */
  err_sq: number;
  /** Leading singular values of W − q(W), descending (up to the profile's max rank). */
  sv: number[];
}

export interface MatrixProfile {
  name: string;
  shape: [number, number];
  /** ‖W‖²_F. */
  w_sq: number;
  /** By bit width ("2", "3", "4", "8"). */
  bits: Record<string, BitsProfile>;
}

export interface ModelProfile {
  format: 'loftq-profile/1';
  model: { path: string; identity: string };
  quant: string;
  block: number;
  max_rank: number;
  matrices: MatrixProfile[];
  seconds: number;
}

/** What each method's prediction is, in words (the views and the CLI say it). */
export const PREDICTION_BASIS: Record<PlanMethod, string> = {
  qlora: 'QLoRA: ‖W − Q‖ / ‖W‖ (B = 0, whatever the rank)',
  loftq: 'LoftQ, one alternating step (T = 1); more steps only lower it',
};

export interface PreparedProfile {
  names: string[];
  shapes: Array<[number, number]>;
  /** By matrix: bits → [‖W − Q‖², prefix sums of σ²…] (index r + 1: the energy of the first r). */
  energy: Array<Map<number, Float64Array>>;
  wSq: Float64Array;
  maxRank: number;
  index: Map<string, number>;
}

export function prepareProfile(p: ModelProfile): PreparedProfile {
  const energy = p.matrices.map((m) => {
    const byBits = new Map<number, Float64Array>();
    for (const [b, e] of Object.entries(m.bits)) {
      const row = new Float64Array(e.sv.length + 2);
      row[0] = e.err_sq;
      for (let i = 0; i < e.sv.length; i++) row[i + 2] = row[i + 1] + e.sv[i] * e.sv[i];
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

/** The predicted err of matrix i (NaN: a width not profiled, or a LoftQ rank beyond the profile). */
export function errorAt(p: PreparedProfile, i: number, bits: number, rank: number, method: PlanMethod): number {
  const row = p.energy[i].get(bits);
  if (!row) return NaN;
  const r = method === 'qlora' ? 0 : Math.min(rank, p.shapes[i][0], p.shapes[i][1]);
  if (r + 2 > row.length) return NaN;
  const residual = Math.max(0, row[0] - row[r + 1]);
  return p.wSq[i] > 0 ? Math.sqrt(residual / p.wSq[i]) : 0;
}

export interface Prediction {
  /** err per target, in the order of the names given (NaN: not in the profile, or rank too high). */
  errors: Float64Array;
  mean: number;
  worst: { name: string; err: number } | null;
}

export function predict(p: PreparedProfile, names: readonly string[], bits: readonly number[], rank: number, method: PlanMethod): Prediction {
  const errors = new Float64Array(names.length);
  let sum = 0;
  let n = 0;
  let worst: Prediction['worst'] = null;
  for (let k = 0; k < names.length; k++) {
    const i = p.index.get(names[k]);
    const e = i === undefined ? NaN : errorAt(p, i, bits[k], rank, method);
    errors[k] = e;
    if (!Number.isFinite(e)) continue;
    sum += e;
    n++;
    if (!worst || e > worst.err) worst = { name: names[k], err: e };
  }
  return { errors, mean: n > 0 ? sum / n : NaN, worst };
}
