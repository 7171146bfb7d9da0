// The layer × module grids' axes and labels (the module facts themselves are the engine's:
// src-main/engine/rules/modules.ts).
import { sortModules } from '../../src-main/engine/rules/modules';

/** Short labels for narrow grid columns. */
export function moduleLabel(module: string): string {
  return module.replace(/_proj$/, '');
}

/** Rows (layers) and columns (modules) of a layer × module grid over some targets. */
export function gridAxes(targets: readonly { layer: number; module: string }[]): { layers: number[]; modules: string[] } {
  const layers = [...new Set(targets.map((t) => t.layer))].sort((a, b) => a - b);
  return { layers, modules: sortModules(targets.map((t) => t.module)) };
}
