import { describe, expect, it } from 'vitest';
import { inAppWords } from './app-words';

describe('inAppWords', () => {
  it('names the fields the user sees instead of CLI flags', () => {
    expect(inAppWords('--rank 999 is larger than min(out, in) = 64 of model.layers.0.self_attn.k_proj [64, 192]')).toBe('Rank r 999 is larger than min(out, in) = 64 of model.layers.0.self_attn.k_proj [64, 192]');
    expect(inAppWords('output /x already exists (use --force to replace it)')).toBe('output /x already exists (tick “Replace the folder” to replace it)');
    expect(inAppWords('resume: --lr was 0.002, now 0.01; start a new run or use the same settings')).toBe('resume: Learning rate was 0.002, now 0.01; start a new run or use the same settings');
    // Longer flags first: --bits-map is not "Bits-map", --seq-len is not "--seq" + "-len".
    expect(inAppWords('--bits-map rule 3 is unused; --seq-len 600 exceeds 512')).toBe('the bits grid rule 3 is unused; Sequence length 600 exceeds 512');
    expect(inAppWords('nothing to change here')).toBe('nothing to change here');
  });
});
