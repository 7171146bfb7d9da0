import { describe, expect, it } from 'vitest';
// The grid's encoder is checked against the engine's own parser (src-main/engine/rules/).
import { resolveBitsMap } from '../../src-main/engine/rules/bits-map';
import { LLAMA_MODULES, modulePath } from '../../src-main/engine/rules/modules';
import { BIT_CHOICES, buildBitsMap, effectiveBits, nextBits, pruneOverrides, setOverrides, type BitsGridState, type BitsTarget } from './bits-map';

function model(layers: number, modules: readonly string[] = LLAMA_MODULES): BitsTarget[] {
  const out: BitsTarget[] = [];
  for (let layer = 0; layer < layers; layer++) for (const module of modules) out.push({ name: modulePath(layer, module), layer, module });
  return out;
}

function state(partial: Partial<BitsGridState>): BitsGridState {
  return { globalBits: 2, firstK: 0, overrides: {}, ...partial };
}

/** The spec must make the engine's rules give every target its effective bits, with no unused rule. */
function expectRoundTrip(targets: BitsTarget[], s: BitsGridState): string {
  const spec = buildBitsMap(targets, s);
  const { bits, unused } = resolveBitsMap(targets, s.globalBits, spec);
  expect(unused).toEqual([]);
  expect(bits).toEqual(effectiveBits(targets, s));
  return spec;
}

const SELECTOR = /^(first:\d+|layers:\d+(-\d+)?|attn|mlp|[a-z]+_proj|model\.layers\.\d+\.(self_attn|mlp)\.[a-z]+_proj)$/;

describe('buildBitsMap', () => {
  const demo = model(4);

  it('is empty when --bits alone assigns everything', () => {
    expect(buildBitsMap(demo, state({ globalBits: 4 }))).toBe('');
    // The preset at the global bits changes nothing either.
    expect(buildBitsMap(demo, state({ globalBits: 4, firstK: 2 }))).toBe('');
  });

  it("writes the paper's preset as first:K=4", () => {
    const s = state({ globalBits: 2, firstK: 2 });
    expect(expectRoundTrip(demo, s)).toBe('first:2=4');
    expect(effectiveBits(demo, s).slice(0, 14).every((b) => b === 4)).toBe(true);
    expect(effectiveBits(demo, s).slice(14).every((b) => b === 2)).toBe(true);
  });

  it('turns a single cell into its module path', () => {
    const name = 'model.layers.3.mlp.down_proj';
    expect(expectRoundTrip(demo, state({ overrides: { [name]: 8 } }))).toBe(`${name}=8`);
  });

  it('uses layer ranges for whole rows, merging consecutive ones', () => {
    const overrides = Object.fromEntries(demo.filter((t) => t.layer === 1 || t.layer === 2).map((t) => [t.name, 8]));
    expect(expectRoundTrip(demo, state({ overrides }))).toBe('layers:1-2=8');
  });

  it('uses the module name for a whole column and attn / mlp for groups', () => {
    const col = Object.fromEntries(demo.filter((t) => t.module === 'v_proj').map((t) => [t.name, 3]));
    expect(expectRoundTrip(demo, state({ overrides: col }))).toBe('v_proj=3');
    const attn = Object.fromEntries(demo.filter((t) => t.module.match(/^[qkvo]_proj$/)).map((t) => [t.name, 8]));
    expect(expectRoundTrip(demo, state({ overrides: attn }))).toBe('attn=8');
  });

  it('combines a layer range with a module for part of a column', () => {
    const overrides = Object.fromEntries(demo.filter((t) => t.module === 'down_proj' && t.layer >= 1).map((t) => [t.name, 4]));
    expect(expectRoundTrip(demo, state({ overrides }))).toBe('layers:1-3/down_proj=4');
  });

  it('stacks rules over the preset', () => {
    const s = state({ globalBits: 2, firstK: 1, overrides: { 'model.layers.0.self_attn.q_proj': 8, 'model.layers.3.self_attn.k_proj': 3 } });
    const spec = expectRoundTrip(demo, s);
    expect(spec.split(',')[0]).toBe('first:1=4');
    expect(spec).toContain('model.layers.0.self_attn.q_proj=8');
    expect(spec).toContain('model.layers.3.self_attn.k_proj=3');
  });

  it('ignores overrides of matrices that are not targets (modules deselected)', () => {
    const qv = model(4, ['q_proj', 'v_proj']);
    expect(expectRoundTrip(qv, state({ overrides: { 'model.layers.0.mlp.up_proj': 8 } }))).toBe('');
  });

  it('round-trips random grids, small and large (500+ matrices)', () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (const targets of [model(6), model(80), model(5, ['q_proj', 'v_proj', 'down_proj'])]) {
      for (let trial = 0; trial < 60; trial++) {
        const globalBits = BIT_CHOICES[Math.floor(rand() * 4)];
        const firstK = rand() < 0.5 ? 0 : 1 + Math.floor(rand() * 8);
        const base = state({ globalBits, firstK });
        let overrides: Record<string, number> = {};
        const density = rand();
        // Random cells, plus occasionally whole rows / columns, as a user would click them.
        for (const t of targets) if (rand() < density * 0.3) overrides[t.name] = BIT_CHOICES[Math.floor(rand() * 4)];
        if (rand() < 0.5) {
          const layer = Math.floor(rand() * 6);
          overrides = setOverrides({ ...base, overrides }, targets.filter((t) => t.layer >= layer && t.layer < layer + 3), 8);
        }
        if (rand() < 0.5) overrides = setOverrides({ ...base, overrides }, targets.filter((t) => t.module === 'down_proj'), 3);
        const s = { ...base, overrides };
        const spec = expectRoundTrip(targets, s);
        for (const rule of spec.split(',').filter(Boolean)) {
          const [sel, bits] = rule.split('=');
          expect(BIT_CHOICES).toContain(Number(bits));
          for (const part of sel.split('/')) expect(part).toMatch(SELECTOR);
        }
      }
    }
  });

  it('builds the map for 560 matrices quickly', () => {
    const big = model(80);
    const overrides: Record<string, number> = {};
    big.forEach((t, i) => {
      if (i % 3 === 0) overrides[t.name] = 8;
    });
    const t0 = performance.now();
    expectRoundTrip(big, state({ overrides }));
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

describe('grid editing', () => {
  it('cycles 2 → 3 → 4 → 8 → 2', () => {
    expect([2, 3, 4, 8].map(nextBits)).toEqual([3, 4, 8, 2]);
  });

  it('keeps only overrides that differ from the base', () => {
    const targets = model(2);
    const s = state({ globalBits: 4 });
    const o = setOverrides(s, targets.slice(0, 3), 8);
    expect(Object.keys(o)).toHaveLength(3);
    expect(setOverrides({ ...s, overrides: o }, targets.slice(0, 1), 4)).not.toHaveProperty(targets[0].name);
    // Changing the global bits to 8 makes the 8-bit overrides redundant.
    expect(pruneOverrides({ ...s, globalBits: 8, overrides: o })).toEqual({});
  });
});
