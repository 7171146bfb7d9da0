// The Quantize view's bit assignment: global bits, the LoftQ paper's "first k layers at 4
// bits" preset, and per-cell overrides of a layer × module grid; written in the engine's
// --bits-map grammar by the engine's own encoder (src-main/engine/rules/).
import type { BitsTarget } from '../../src-main/engine/rules/bits-map';
import { encodeBitsMap, presetBits } from '../../src-main/engine/rules/bits-map-encoder';
import { parseModulePath } from '../../src-main/engine/rules/modules';

export type { BitsTarget };

export const BIT_CHOICES = [2, 3, 4, 8] as const;

/** The paper's mixed precision: the first k decoder layers at this many bits. */
export const PRESET_BITS = 4;

export interface BitsGridState {
  /** Bits of every matrix no rule changes (--bits). */
  globalBits: number;
  /** The first `firstK` layers get PRESET_BITS; 0 turns the preset off. */
  firstK: number;
  /** Per-matrix bits chosen in the grid, by module path. */
  overrides: Readonly<Record<string, number>>;
}

/** The next choice when a cell is clicked: 2 → 3 → 4 → 8 → 2. */
export function nextBits(bits: number): number {
  const i = (BIT_CHOICES as readonly number[]).indexOf(bits);
  return BIT_CHOICES[(i + 1) % BIT_CHOICES.length];
}

/** Bits of a matrix before grid overrides: the preset or the global bits. */
export function baseBits(state: BitsGridState, layer: number): number {
  return presetBits(state.globalBits, { firstK: state.firstK, bits: PRESET_BITS }, layer);
}

export function effectiveBits(targets: readonly BitsTarget[], state: BitsGridState): number[] {
  return targets.map((t) => state.overrides[t.name] ?? baseBits(state, t.layer));
}

/** Sets the given matrices to `bits`, dropping overrides that equal the base (so the map stays minimal). */
export function setOverrides(state: BitsGridState, targets: readonly BitsTarget[], bits: number): Record<string, number> {
  const next: Record<string, number> = { ...state.overrides };
  for (const t of targets) {
    if (bits === baseBits(state, t.layer)) delete next[t.name];
    else next[t.name] = bits;
  }
  return next;
}

/** Overrides that still differ from the base after the global bits or the preset changed. */
export function pruneOverrides(state: BitsGridState): Record<string, number> {
  const next: Record<string, number> = {};
  for (const [name, bits] of Object.entries(state.overrides)) {
    const p = parseModulePath(name);
    if (!p || bits !== baseBits(state, p.layer)) next[name] = bits;
  }
  return next;
}

/** The --bits-map string that makes the engine assign every target its effective bits, or '' when --bits alone does. */
export function buildBitsMap(targets: readonly BitsTarget[], state: BitsGridState): string {
  return encodeBitsMap(targets, effectiveBits(targets, state), state.globalBits, { firstK: state.firstK, bits: PRESET_BITS });
}
