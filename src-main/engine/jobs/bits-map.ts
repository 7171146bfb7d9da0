// Per-matrix bit assignment. The --bits-map SPEC is a comma-separated list of rules
// `SELECTOR[/SELECTOR...]=BITS`, applied left to right over the --bits default (later rules
// win). A selector is one of:
//   first:K        the first K decoder layers (the LoftQ paper's mixed-precision preset)
//   layers:A-B     decoder layers A..B inclusive (or layers:N for one layer)
//   attn | mlp     the attention (q,k,v,o) or MLP (gate,up,down) projections
//   q_proj ...     a module short name
//   model.layers.3.mlp.down_proj   one matrix by its module path
// A rule's selectors must all match. Example: "first:4=4,layers:0-31/down_proj=8".
import { UserError } from '../errors';
import { codebookLevels } from '../quant/codebook';
import { isLinearModule, type Target } from '../io/targets';

type Selector = (t: Target) => boolean;

interface Rule {
  text: string;
  matches: Selector;
  bits: number;
}

const ATTN = new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj']);
const MLP = new Set(['gate_proj', 'up_proj', 'down_proj']);

function parseBits(text: string, where: string): number {
  const bits = Number(text);
  if (!/^\d+$/.test(text)) throw new UserError(`bits-map: '${where}' has no valid bit count after '='`);
  codebookLevels('uniform', bits); // throws the unsupported-bits error
  return bits;
}

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
  if (text === 'attn') return (t) => ATTN.has(t.module);
  if (text === 'mlp') return (t) => MLP.has(t.module);
  if (isLinearModule(text)) return (t) => t.module === text;
  if (/^model\.layers\.\d+\.(self_attn|mlp)\.\w+$/.test(text)) return (t) => t.name === text;
  throw new UserError(
    `bits-map: unknown selector '${text}' in '${rule}' (use first:K, layers:A-B, attn, mlp, a module name like q_proj, or a module path)`,
  );
}

export function parseBitsMap(spec: string): Rule[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((text) => {
      const eq = text.lastIndexOf('=');
      if (eq <= 0) throw new UserError(`bits-map: rule '${text}' must look like SELECTOR=BITS`);
      const selectors = text.slice(0, eq).split('/').map((s) => parseSelector(s.trim(), text));
      return { text, bits: parseBits(text.slice(eq + 1).trim(), text), matches: (t: Target) => selectors.every((f) => f(t)) };
    });
}

/** Bits for every target: the default, overridden by the rules in order. Unused rules are an error (likely a typo). */
export function assignBits(targets: Target[], defaultBits: number, spec: string | undefined): number[] {
  parseBits(String(defaultBits), `--bits ${defaultBits}`);
  const rules = spec ? parseBitsMap(spec) : [];
  const used = new Set<Rule>();
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
  const unused = rules.filter((r) => !used.has(r));
  if (unused.length > 0) throw new UserError(`bits-map: rule '${unused[0].text}' matches no target matrix`);
  return bits;
}
