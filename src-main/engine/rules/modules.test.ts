import { describe, expect, it } from 'vitest';
import { formatTargets, isTarget, modulePath, parseModulePath, parseTargets, sortModules } from './modules';

describe('module facts', () => {
  it('writes and reads module paths', () => {
    expect(modulePath(3, 'down_proj')).toBe('model.layers.3.mlp.down_proj');
    expect(modulePath(0, 'k_proj')).toBe('model.layers.0.self_attn.k_proj');
    expect(parseModulePath('model.layers.12.self_attn.o_proj')).toEqual({ layer: 12, module: 'o_proj' });
    expect(parseModulePath('lm_head')).toBeNull();
    expect(sortModules(['down_proj', 'q_proj', 'zz', 'q_proj'])).toEqual(['q_proj', 'down_proj', 'zz']);
  });

  it('reads and writes --targets', () => {
    expect(parseTargets(' all-linear ')).toBe('all-linear');
    expect(parseTargets('v_proj, q_proj,v_proj')).toEqual(['q_proj', 'v_proj']);
    expect(() => parseTargets('q_proj,lm_head')).toThrow(/unknown module lm_head/);
    expect(() => parseTargets(' , ')).toThrow(/all-linear or a list/);
    expect(formatTargets(null)).toBe('all-linear');
    expect(formatTargets(['v_proj', 'q_proj'])).toBe('q_proj,v_proj');
    expect(formatTargets(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'])).toBe('all-linear');
    expect(isTarget(['q_proj'], 'q_proj') && !isTarget(['q_proj'], 'k_proj') && isTarget('all-linear', 'up_proj')).toBe(true);
  });
});
