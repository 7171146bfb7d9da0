// The --bits-map grammar: a comma-separated list of rules `SELECTOR[/SELECTOR...]=BITS`,
// applied left to right over the --bits default (later rules win). A selector is one of:
//   first:K        the first K decoder layers (the LoftQ paper's mixed-precision preset)
//   layers:A-B     decoder layers A..B inclusive (or layers:N for one layer)
//   attn | mlp     the attention (q,k,v,o) or MLP (gate,up,down) projections
//   q_proj ...     a module short name
//   model.layers.3.mlp.down_proj   one matrix by its module path
// A rule's selectors must all match. Example: "first:4=4,layers:0-31/down_proj=8".
// Pure: the engine assigns a run's bits with it and the dashboard writes its grid in it.
import { UserError } from '../errors';
import { ATTN_MODULES, isLinearModule, MLP_MODULES } from './modules';

/** What a selector looks at. */
export interface BitsTarget {
  name: string;
  layer: number;
  module: string;
}

export interface BitsRule {
  text: string;
  bits: number;
  matches(t: BitsTarget): boolean;
}

type Selector = (t: BitsTarget) => boolean;

function parseSelector(text: string, rule: string): Selector {
  let m: RegExpExecArray | null;
  if ((m = /^first:(\d+)$/.exec(text))) {
    const k = Number(m[1]);
    return (t) => t.layer < k;
  }
  if ((m = /^layers:(\d+)(?:-(\d+))?$/.exec(text))) {
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new UserError(`bits-map: empty layer range in '${rule}'`);
    return (t) => t.layer >= a && t.layer <= b;
  }
  if (text === 'attn') return (t) => ATTN_MODULES.has(t.module);
  if (text === 'mlp') return (t) => MLP_MODULES.has(t.module);
  if (isLinearModule(text)) return (t) => t.module === text;
  if (/^model\.layers\.\d+\.(self_attn|mlp)\.\w+$/.test(text)) return (t) => t.name === text;
  throw new UserError(
    `bits-map: unknown selector '${text}' in '${rule}' (use first:K, layers:A-B, attn, mlp, a module name like q_proj, or a module path)`,
  );
}

/**
 * The rules of a spec, in order. `checkBits` vets each rule's bit count (the engine asks its
 * quantizer which widths exist); without it any whole number parses.
 */
export function parseBitsMap(spec: string, checkBits?: (bits: number, rule: string) => void): BitsRule[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((text) => {
      const eq = text.lastIndexOf('=');
      if (eq <= 0) throw new UserError(`bits-map: rule '${text}' must look like SELECTOR=BITS`);
      const selectors = text.slice(0, eq).split('/').map((s) => parseSelector(s.trim(), text));
      const bitsText = text.slice(eq + 1).trim();
      if (!/^\d+$/.test(bitsText)) throw new UserError(`bits-map: '${text}' has no valid bit count after '='`);
      const bits = Number(bitsText);
      checkBits?.(bits, text);
      return { text, bits, matches: (t: BitsTarget) => selectors.every((f) => f(t)) };
    });
}

/** The bits of every target under a spec over `defaultBits`, and the rules that matched nothing. */
export function resolveBitsMap(targets: readonly BitsTarget[], defaultBits: number, spec: string, checkBits?: (bits: number, rule: string) => void): { bits: number[]; unused: string[] } {
  const rules = parseBitsMap(spec, checkBits);
  const used = new Set<BitsRule>();
  const bits = targets.map((t) => {
    let b = defaultBits;
    for (const r of rules) {
      if (r.matches(t)) {
        b = r.bits;
        used.add(r);
      }
    }
    return b;
  });
  return { bits, unused: rules.filter((r) => !used.has(r)).map((r) => r.text) };
}
