// The Llama family's decoder projections as the planner, the bits-map grammar and the
// dashboard name them: the seven linear modules in canonical order, their attention / MLP
// groups, module paths (model.layers.3.mlp.down_proj) both ways, and --targets (which modules
// get an adapter). Pure: the engine and the renderer import this one copy.
import { UserError } from '../errors';

/** The linear modules of a Llama-family decoder layer, in their canonical order. */
export const LLAMA_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LinearModule = (typeof LLAMA_MODULES)[number];

export const ATTN_MODULES: ReadonlySet<string> = new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj']);
export const MLP_MODULES: ReadonlySet<string> = new Set(['gate_proj', 'up_proj', 'down_proj']);

export function isLinearModule(s: string): s is LinearModule {
  return (LLAMA_MODULES as readonly string[]).includes(s);
}

/** The module path of a layer's projection, e.g. model.layers.0.self_attn.q_proj. */
export function modulePath(layer: number, module: string): string {
  return `model.layers.${layer}.${MLP_MODULES.has(module) ? 'mlp' : 'self_attn'}.${module}`;
}

const PATH = /^model\.layers\.(\d+)\.(self_attn|mlp)\.([A-Za-z0-9_]+)$/;

/** Layer and short module name of a module path, or null when it is not one. */
export function parseModulePath(name: string): { layer: number; module: string } | null {
  const m = PATH.exec(name);
  return m ? { layer: Number(m[1]), module: m[3] } : null;
}

/** Modules in canonical order, each once (unknown names last, alphabetically). */
export function sortModules(modules: Iterable<string>): string[] {
  const rank = (m: string) => {
    const i = (LLAMA_MODULES as readonly string[]).indexOf(m);
    return i < 0 ? LLAMA_MODULES.length : i;
  };
  return [...new Set(modules)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export type TargetSpec = 'all-linear' | LinearModule[];

/** --targets: "all-linear" or a comma-separated list of modules (each once, canonical order). */
export function parseTargets(text: string): TargetSpec {
  const s = text.trim();
  if (s === 'all-linear') return 'all-linear';
  const list = [...new Set(s.split(',').map((x) => x.trim()).filter((x) => x !== ''))];
  if (list.length === 0) throw new UserError(`--targets: expected all-linear or a list like q_proj,v_proj`);
  const bad = list.filter((x) => !isLinearModule(x));
  if (bad.length > 0) {
    throw new UserError(`--targets: unknown module ${bad.join(', ')}; choose from all-linear, ${LLAMA_MODULES.join(', ')}`);
  }
  return LLAMA_MODULES.filter((m) => list.includes(m));
}

/** The --targets text for a set of modules: all-linear when every one is chosen. */
export function formatTargets(modules: readonly string[] | null): string {
  if (modules === null || LLAMA_MODULES.every((m) => modules.includes(m))) return 'all-linear';
  return sortModules(modules).join(',');
}

/** Whether a module is a target under a spec. */
export function isTarget(spec: TargetSpec, module: string): boolean {
  return spec === 'all-linear' ? isLinearModule(module) : (spec as readonly string[]).includes(module);
}
