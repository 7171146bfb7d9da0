// The LoRA scaling s that multiplies B·A: alpha/r, or alpha/√r with rsLoRA; and the alpha
// that goes with a new rank when the planner chooses it, under one of two rules the user picks:
// keep s as it is (the adapter's effective step size in training stays put), or alpha = r
// (s = 1, the CLI's default). Pure.

export function loraScaling(alpha: number, rank: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

export type AlphaRule = 'keep-scaling' | 'alpha-equals-rank';

export const ALPHA_RULE_LABELS: Record<AlphaRule, string> = {
  'keep-scaling': 'keep s = α/r',
  'alpha-equals-rank': 'α = r',
};

/** The alpha for `rank` under `rule`, given the current alpha and rank (rounded to 6 significant digits). */
export function alphaForRank(rule: AlphaRule, rank: number, current: { alpha: number; rank: number; rslora: boolean }): number {
  if (rule === 'alpha-equals-rank') return rank;
  const s = loraScaling(current.alpha, current.rank, current.rslora);
  const alpha = current.rslora ? s * Math.sqrt(rank) : s * rank;
  return Number(alpha.toPrecision(6));
}
