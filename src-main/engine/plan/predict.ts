// The planner's prediction from a model's profile, exact for one LoftQ step by Pythagoras:
// Q = q(W) and B·A the best rank-r approximation of W − Q, so
//   ‖W − Q − B·A‖² = ‖W − Q‖² − Σ_{i≤r} σᵢ(W − Q)².
// Pure arithmetic on the profile (no Node, no device), so the dashboard runs it on every edit.

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

/** err = ‖W − Q − B·A‖ / ‖W‖ after one LoftQ step at `bits` and `rank` (rank 0: QLoRA's ‖W − Q‖ / ‖W‖). */
export function predictedError(m: MatrixProfile, bits: number, rank: number): number {
  const p = m.bits[String(bits)];
  if (!p) return NaN;
  if (rank > p.sv.length) return NaN; // beyond what the profile measured
  let captured = 0;
  for (let i = 0; i < rank; i++) captured += p.sv[i] * p.sv[i];
  const residual = Math.max(0, p.err_sq - captured);
  return m.w_sq > 0 ? Math.sqrt(residual / m.w_sq) : 0;
}
