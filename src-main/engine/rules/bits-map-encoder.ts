// The inverse of the --bits-map grammar (bits-map.ts): a short spec that gives every target
// the bits it should have, over a default (and the paper's first-k preset, when one is on).
// The dashboard writes its bit grid with it, the CLI the planner's allocation. Every rule sets
// only matrices whose bits equal the rule's bits, so the rules' order does not matter and each
// matches at least one target (the engine rejects unused rules); broad selectors are tried
// first to keep the string short, single cells become module paths. Pure.
import type { BitsTarget } from './bits-map';
import { ATTN_MODULES, MLP_MODULES } from './modules';

/** The paper's mixed precision as a base under the rules: the first `firstK` layers at `bits`. */
export interface FirstLayersPreset {
  firstK: number;
  bits: number;
}

interface Candidate {
  selector: string;
  members: number[];
}

/** The bits a target has before any rule but the preset. */
export function presetBits(defaultBits: number, preset: FirstLayersPreset | undefined, layer: number): number {
  return preset && preset.firstK > 0 && layer < preset.firstK ? preset.bits : defaultBits;
}

/** The width most targets have (ties: the fewer bits): the natural --bits under a spec. */
export function commonestBits(bits: readonly number[]): number | undefined {
  const count = new Map<number, number>();
  for (const b of bits) count.set(b, (count.get(b) ?? 0) + 1);
  return [...count].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
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

/** The --bits-map that gives target i bits[i] over `defaultBits` (and the preset), or '' when none is needed. */
export function encodeBitsMap(targets: readonly BitsTarget[], bits: readonly number[], defaultBits: number, preset?: FirstLayersPreset): string {
  const rules: string[] = [];
  if (preset && preset.firstK > 0 && preset.bits !== defaultBits && targets.some((t) => t.layer < preset.firstK)) {
    rules.push(`first:${preset.firstK}=${preset.bits}`);
  }
  const done = targets.map((t, i) => bits[i] === presetBits(defaultBits, preset, t.layer));
  if (done.every(Boolean)) return rules.join(',');

  const take = (c: Candidate) => {
    if (c.members.length === 0 || c.members.every((i) => done[i])) return;
    const b = bits[c.members[0]];
    if (!c.members.every((i) => bits[i] === b)) return;
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
    const b = bits[members[0]];
    return members.every((i) => bits[i] === b) ? b : null;
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
