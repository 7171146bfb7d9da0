import { describe, expect, it } from 'vitest';
import { dtypeBytes, estimate } from './estimate';

// The demo model (assets/demo-model): 4 layers, hidden 192, MLP 512, 2 KV heads of 32.
const LAYER: [number, number][] = [
  [192, 192],
  [64, 192],
  [64, 192],
  [192, 192],
  [512, 192],
  [512, 192],
  [192, 512],
];
const DEMO = Array.from({ length: 4 }, () => LAYER).flat();
const PARAMS = 1_771_200;

describe('estimate', () => {
  it("matches the engine's summary of the demo model's 2-bit LoftQ run", () => {
    // runs/demo/loftq-2bit/run.json: avg_bits 2.5, quantized_bytes 491520, adapter_params 217088.
    const e = estimate({ shapes: DEMO, bits: DEMO.map(() => 2), block: 64, rank: 16, parameters: PARAMS, dtype: 'bfloat16' });
    expect(e.targetParams).toBe(1_572_864);
    expect(e.avgBits).toBe(2.5);
    expect(e.quantizedBytes).toBe(491_520);
    expect(e.adapterParams).toBe(217_088);
    expect(e.adapterBytes).toBe(217_088 * 4);
    expect(e.otherBytes).toBe((PARAMS - 1_572_864) * 2);
    expect(e.backboneBytes).toBe(491_520 + (PARAMS - 1_572_864) * 2);
  });

  it('weights mixed bits by matrix size and counts partial blocks', () => {
    // 100 weights in blocks of 64: 2 absmax values.
    const e = estimate({ shapes: [[10, 10], [300, 1]], bits: [4, 8], block: 64, rank: 2, parameters: 1000, dtype: 'float32' });
    const stored = 100 * 4 + 2 * 32 + 300 * 8 + 5 * 32;
    expect(e.avgBits).toBeCloseTo(stored / 400, 12);
    expect(e.quantizedBytes).toBe(stored / 8);
    expect(e.otherBytes).toBe(600 * 4);
    expect(e.adapterParams).toBe(2 * 20 + 2 * 301);
  });

  it('goes up with bits, block overhead and rank as expected', () => {
    const base = { shapes: DEMO, bits: DEMO.map(() => 4), block: 64, rank: 16, parameters: PARAMS, dtype: 'bfloat16' };
    expect(estimate(base).avgBits).toBe(4.5);
    expect(estimate({ ...base, block: 32 }).avgBits).toBe(5);
    expect(estimate({ ...base, rank: 32 }).adapterBytes).toBe(2 * estimate(base).adapterBytes);
    const first1 = DEMO.map((_, i) => (i < 7 ? 4 : 2));
    const mixed = estimate({ ...base, bits: first1 }).avgBits;
    expect(mixed).toBeGreaterThan(2.5);
    expect(mixed).toBeLessThan(4.5);
    expect(mixed).toBeCloseTo((393_216 * 4.5 + 1_179_648 * 2.5) / 1_572_864, 12);
  });

  it('knows the usual dtypes and falls back to the file size', () => {
    expect(dtypeBytes('bfloat16')).toBe(2);
    expect(dtypeBytes('float32')).toBe(4);
    expect(dtypeBytes('float16')).toBe(2);
    expect(dtypeBytes('strange', { weightBytes: 3000, parameters: 1000 })).toBe(3);
  });

  it('is zero for no targets', () => {
    expect(estimate({ shapes: [], bits: [], block: 64, rank: 8, parameters: 10, dtype: 'float16' }).avgBits).toBe(0);
  });
});
