// A model profile whose numbers are easy to check, for the planner's tests (engine and
// dashboard): W has ‖W‖² = 100; q at b bits leaves ‖W − Q‖² = 100/4^b·(1 + k/10) for matrix k,
// with σᵢ² = ‖W − Q‖²/2^(i+1), so the first r singular values hold 1 − 2^−r of it.
import type { ModelProfile } from './planner';

export function syntheticProfile(matrices: number, maxRank = 8): ModelProfile {
  return {
    format: 'loftq-profile/1',
    model: { path: '/m', identity: 'x' },
    quant: 'nf',
    block: 64,
    max_rank: maxRank,
    seconds: 0,
    matrices: Array.from({ length: matrices }, (_, k) => ({
      name: `model.layers.${k}.mlp.down_proj`,
      shape: [64, 64 * (k + 1)] as [number, number],
      w_sq: 100,
      bits: Object.fromEntries(
        [2, 3, 4, 8].map((b) => {
          const errSq = (100 / 4 ** b) * (1 + k / 10);
          return [String(b), { err_sq: errSq, sv: Array.from({ length: maxRank }, (_, i) => Math.sqrt(errSq / 2 ** (i + 1))) }];
        }),
      ),
    })),
  };
}
