// Module paths of the Llama family's decoder projections: parsing, canonical order, groups.
// (The renderer keeps its own copy of these few facts: it never imports the engine.)

export const MODULE_ORDER = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export const ATTN_MODULES: ReadonlySet<string> = new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj']);
export const MLP_MODULES: ReadonlySet<string> = new Set(['gate_proj', 'up_proj', 'down_proj']);

const PATH = /^model\.layers\.(\d+)\.(self_attn|mlp)\.([A-Za-z0-9_]+)$/;

/** Layer and short module name of a module path such as model.layers.3.mlp.down_proj. */
export function parseModulePath(name: string): { layer: number; module: string } | null {
  const m = PATH.exec(name);
  return m ? { layer: Number(m[1]), module: m[3] } : null;
}

export function modulePath(layer: number, module: string): string {
  return `model.layers.${layer}.${MLP_MODULES.has(module) ? 'mlp' : 'self_attn'}.${module}`;
}

/** Modules in canonical order (unknown names last, alphabetically). */
export function sortModules(modules: Iterable<string>): string[] {
  const rank = (m: string) => {
    const i = (MODULE_ORDER as readonly string[]).indexOf(m);
    return i < 0 ? MODULE_ORDER.length : i;
  };
  return [...new Set(modules)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** Short labels for narrow grid columns. */
export function moduleLabel(module: string): string {
  return module.replace(/_proj$/, '');
}

export interface CellTarget {
  name: string;
  layer: number;
  module: string;
  shape: [number, number];
}

/** Rows (layers) and columns (modules) of a layer × module grid over some targets. */
export function gridAxes(targets: readonly { layer: number; module: string }[]): { layers: number[]; modules: string[] } {
  const layers = [...new Set(targets.map((t) => t.layer))].sort((a, b) => a - b);
  return { layers, modules: sortModules(targets.map((t) => t.module)) };
}
