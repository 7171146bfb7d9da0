import { describe, expect, it } from 'vitest';
import { UserError } from '../errors';
import { parseBitsMap, resolveBitsMap, type BitsTarget } from './bits-map';
import { commonestBits, encodeBitsMap } from './bits-map-encoder';
import { LLAMA_MODULES, modulePath } from './modules';

function model(layers: number, modules: readonly string[] = LLAMA_MODULES): BitsTarget[] {
  const out: BitsTarget[] = [];
  for (let layer = 0; layer < layers; layer++) for (const module of modules) out.push({ name: modulePath(layer, module), layer, module });
  return out;
}

describe('the --bits-map grammar', () => {
  it('applies rules left to right and reports unused ones', () => {
    const { bits, unused } = resolveBitsMap(model(2), 2, 'first:1=4, mlp=8, layers:7=3');
    expect(bits).toEqual([4, 4, 4, 4, 8, 8, 8, 2, 2, 2, 2, 8, 8, 8]);
    expect(unused).toEqual(['layers:7=3']);
  });

  it('joins selectors with / (all must match) and names single matrices by path', () => {
    const { bits } = resolveBitsMap(model(3), 2, 'layers:1-2/down_proj=8,model.layers.0.self_attn.k_proj=3');
    expect(bits.filter((b) => b === 8)).toHaveLength(2);
    expect(bits[1]).toBe(3);
  });

  it('rejects malformed rules with a UserError that names the rule', () => {
    const bad: Array<[string, RegExp]> = [
      ['bogus=4', /unknown selector 'bogus'/],
      ['attn', /SELECTOR=BITS/],
      ['attn=x', /no valid bit count/],
      ['layers:3-1=4', /empty layer range/],
    ];
    for (const [spec, message] of bad) {
      expect(() => parseBitsMap(spec)).toThrow(UserError);
      expect(() => parseBitsMap(spec)).toThrow(message);
    }
    expect(() => parseBitsMap('attn=5', (b) => {
      if (b === 5) throw new UserError('unsupported bits 5');
    })).toThrow(/unsupported bits 5/);
  });
});

describe('encodeBitsMap', () => {
  it('writes a spec the grammar reads back to the same bits, with no unused rule (random assignments)', () => {
    let seed = 99;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (const targets of [model(4), model(16), model(5, ['q_proj', 'v_proj'])]) {
      for (let trial = 0; trial < 40; trial++) {
        const bits = targets.map(() => [2, 3, 4, 8][Math.floor(rand() * 4)]);
        // Some structure, as an allocation has: whole layers and columns.
        if (rand() < 0.5) targets.forEach((t, i) => t.layer < 2 && (bits[i] = 4));
        const base = commonestBits(bits)!;
        const preset = rand() < 0.3 ? { firstK: 1, bits: 4 } : undefined;
        const spec = encodeBitsMap(targets, bits, base, preset);
        const { bits: back, unused } = resolveBitsMap(targets, base, spec);
        expect(unused).toEqual([]);
        expect(back).toEqual(bits);
      }
    }
  });

  it('is empty when the default alone assigns everything, and short for whole groups', () => {
    const demo = model(4);
    expect(encodeBitsMap(demo, demo.map(() => 2), 2)).toBe('');
    expect(encodeBitsMap(demo, demo.map((t) => (t.layer < 2 ? 4 : 2)), 2)).toBe('layers:0-1=4');
    expect(encodeBitsMap(demo, demo.map((t) => (t.module === 'down_proj' ? 8 : 2)), 2)).toBe('down_proj=8');
  });
});
