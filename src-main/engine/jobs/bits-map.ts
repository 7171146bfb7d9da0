// Per-matrix bit assignment for a run: the --bits default overridden by a --bits-map spec
// (the grammar is rules/bits-map.ts, shared with the dashboard), each rule's bits checked
// against the quantizer, and a rule that matches no target refused (likely a typo).
import { UserError } from '../errors';
import type { Target } from '../io/targets';
import { codebookLevels } from '../quant/codebook';
import { resolveBitsMap } from '../rules/bits-map';

/** Throws the quantizer's unsupported-bits error for a width no codebook has. */
function checkBits(bits: number): void {
  codebookLevels('uniform', bits);
}

/** Bits for every target: the default, overridden by the rules in order. */
export function assignBits(targets: Target[], defaultBits: number, spec: string | undefined): number[] {
  checkBits(defaultBits);
  const { bits, unused } = resolveBitsMap(targets, defaultBits, spec ?? '', checkBits);
  if (unused.length > 0) throw new UserError(`bits-map: rule '${unused[0]}' matches no target matrix`);
  return bits;
}
