// The Quantize view's bit assignment: global bits, the LoftQ paper's "first k layers at 4
// bits" preset, and per-cell overrides of a layer × module grid; turned into the engine's
// --bits-map syntax (comma-separated SELECTOR[/SELECTOR...]=BITS rules over the default,
// later rules win; selectors first:K, layers:A-B, attn, mlp, q_proj..., module paths).
import { ATTN_MODULES, MLP_MODULES } from './targets';

export const BIT_CHOICES = [2, 3, 4, 8] as const;

/** The paper's mixed precision: the first k decoder layers at this many bits. */
export const PRESET_BITS = 4;

export interface BitsTarget {
  name: string;
  layer: number;
  module: string;
}

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
  return state.firstK > 0 && layer < state.firstK ? PRESET_BITS : state.globalBits;
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
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (!m || bits !== baseBits(state, Number(m[1]))) next[name] = bits;
  }
  return next;
}

interface Candidate {
  selector: string;
  members: number[];
}

/** Maximal runs of consecutive layer numbers (in the sorted list) that satisfy `key` with the same value. */
function layerRuns(layers: number[], key: (layer: number) => number | null): { from: number; to: number; value: number }[] {
  const runs: { from: number; to: number; value: number }[] = [];
  for (const layer of layers) {
    const v = key(layer);
    const last = runs[runs.length - 1];
    if (v !== null && last && last.value === v && last.to === layer - 1) last.to = layer;
    else if (v !== null) runs.push({ from: layer, to: layer, value: v });
  }
  return runs;
}

function layerSelector(from: number, to: number): string {
  return from === to ? `layers:${from}` : `layers:${from}-${to}`;
}

/**
 * The --bits-map string that makes the engine assign every target its effective bits, or ''
 * when --bits alone does. Every rule sets only matrices whose effective bits equal the rule's
 * bits, so the rules' order does not matter and each matches at least one target (the
 * engine rejects unused rules). Broad selectors are tried first to keep the string short;
 * single cells become module paths.
 */
export function buildBitsMap(targets: readonly BitsTarget[], state: BitsGridState): string {
  const rules: string[] = [];
  if (state.firstK > 0 && PRESET_BITS !== state.globalBits && targets.some((t) => t.layer < state.firstK)) {
    rules.push(`first:${state.firstK}=${PRESET_BITS}`);
  }
  const eff = effectiveBits(targets, state);
  const done = targets.map((t, i) => eff[i] === baseBits(state, t.layer));
  if (done.every(Boolean)) return rules.join(',');

  const take = (c: Candidate) => {
    if (c.members.length === 0 || c.members.every((i) => done[i])) return;
    const b = eff[c.members[0]];
    if (!c.members.every((i) => eff[i] === b)) return;
    rules.push(`${c.selector}=${b}`);
    for (const i of c.members) done[i] = true;
  };
  const all = targets.map((_, i) => i);
  const where = (f: (t: BitsTarget) => boolean) => all.filter((i) => f(targets[i]));
  const modules = [...new Set(targets.map((t) => t.module))];
  const layers = [...new Set(targets.map((t) => t.layer))].sort((a, b) => a - b);
  const byLayer = new Map<number, number[]>();
  for (const i of all) {
    const list = byLayer.get(targets[i].layer);
    if (list) list.push(i);
    else byLayer.set(targets[i].layer, [i]);
  }
  const uniform = (members: number[]): number | null => {
    if (members.length === 0) return null;
    const b = eff[members[0]];
    return members.every((i) => eff[i] === b) ? b : null;
  };

  // 1. Whole groups and columns across every layer.
  take({ selector: 'attn', members: where((t) => ATTN_MODULES.has(t.module)) });
  take({ selector: 'mlp', members: where((t) => MLP_MODULES.has(t.module)) });
  for (const m of modules) take({ selector: m, members: where((t) => t.module === m) });

  // 2. Whole layers, consecutive ones merged.
  for (const run of layerRuns(layers, (l) => uniform(byLayer.get(l) ?? []))) {
    take({ selector: layerSelector(run.from, run.to), members: where((t) => t.layer >= run.from && t.layer <= run.to) });
  }

  // 3. attn / mlp halves of layer ranges.
  for (const [group, set] of [['attn', ATTN_MODULES], ['mlp', MLP_MODULES]] as const) {
    const runs = layerRuns(layers, (l) => uniform((byLayer.get(l) ?? []).filter((i) => set.has(targets[i].module))));
    for (const run of runs) {
      take({
        selector: `${layerSelector(run.from, run.to)}/${group}`,
        members: where((t) => set.has(t.module) && t.layer >= run.from && t.layer <= run.to),
      });
    }
  }

  // 4. One module over a range of layers; a single matrix by its module path.
  for (const m of modules) {
    const runs = layerRuns(layers, (l) => uniform((byLayer.get(l) ?? []).filter((i) => targets[i].module === m)));
    for (const run of runs) {
      const members = where((t) => t.module === m && t.layer >= run.from && t.layer <= run.to);
      take({ selector: members.length === 1 ? targets[members[0]].name : `${layerSelector(run.from, run.to)}/${m}`, members });
    }
  }
  // 5. Whatever is left (e.g. two matrices of one module in one layer): module paths.
  for (const i of all) if (!done[i]) take({ selector: targets[i].name, members: [i] });
  return rules.join(',');
}

/**
 * The renderer's reading of a --bits-map string (the engine's rules, for display and tests):
 * the bits of every target, and the rules that matched nothing (the engine rejects those).
 */
export function resolveBitsMap(
  targets: readonly BitsTarget[],
  defaultBits: number,
  spec: string,
): { bits: number[]; unused: string[] } {
  const parseSelector = (text: string): ((t: BitsTarget) => boolean) => {
    let m: RegExpExecArray | null;
    if ((m = /^first:(\d+)$/.exec(text))) {
      const k = Number(m[1]);
      return (t) => t.layer < k;
    }
    if ((m = /^layers:(\d+)(?:-(\d+))?$/.exec(text))) {
      const a = Number(m[1]);
      const b = m[2] === undefined ? a : Number(m[2]);
      if (b < a) throw new Error(`empty layer range '${text}'`);
      return (t) => t.layer >= a && t.layer <= b;
    }
    if (text === 'attn') return (t) => ATTN_MODULES.has(t.module);
    if (text === 'mlp') return (t) => MLP_MODULES.has(t.module);
    if (/^[a-z]+_proj$/.test(text)) return (t) => t.module === text;
    if (/^model\.layers\.\d+\.(self_attn|mlp)\.\w+$/.test(text)) return (t) => t.name === text;
    throw new Error(`unknown selector '${text}'`);
  };
  const rules = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((text) => {
      const eq = text.lastIndexOf('=');
      if (eq <= 0) throw new Error(`rule '${text}' must look like SELECTOR=BITS`);
      const bitsText = text.slice(eq + 1).trim();
      if (!/^\d+$/.test(bitsText)) throw new Error(`rule '${text}' has no valid bit count`);
      const selectors = text.slice(0, eq).split('/').map((s) => parseSelector(s.trim()));
      return { text, bits: Number(bitsText), matches: (t: BitsTarget) => selectors.every((f) => f(t)), used: false };
    });
  const bits = targets.map((t) => {
    let b = defaultBits;
    for (const r of rules) {
      if (r.matches(t)) {
        b = r.bits;
        r.used = true;
      }
    }
    return b;
  });
  return { bits, unused: rules.filter((r) => !r.used).map((r) => r.text) };
}
