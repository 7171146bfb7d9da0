import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { BlockQuantizer } from '../quant/blockwise';
import { ParallelQuantizer } from './parallel-quantizer';

function mismatches(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = Math.abs(a.length - b.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}

describe('ParallelQuantizer', () => {
  it('gives the single-thread result on every part, across repeated steps', async () => {
    const seed = Date.now();
    const rng = new Rng(seed);
    const n = (1 << 20) + 64 * 37 + 5; // ragged last block, above the parallel threshold
    const w = rng.fillNormal(new Float32Array(n)) as Float32Array;
    const quantizer = new BlockQuantizer({ kind: 'nf', bits: 3, blockSize: 64 });
    const pool = new ParallelQuantizer(3);
    try {
      const session = pool.session(quantizer, w);
      expect(session).not.toBeNull();
      for (let step = 0; step < 2; step++) {
        const x = w.map((v) => v + 0.3 * rng.normal());
        const q = quantizer.quantize(new Float32Array(n).fill(7));
        const diff = new Float32Array(n).fill(NaN);
        const errSq = await session!.quantizeInto(x, q, diff);
        const ref = quantizer.quantize(x);
        const refDiff = new Float32Array(n);
        const refErr = quantizer.quantizeInto(x, ref, w, refDiff);
        // Counted by hand: deep equality over 10⁶ elements is slow in the test runner.
        expect(mismatches(q.codes, ref.codes)).toBe(0);
        expect(mismatches(q.absmax, ref.absmax)).toBe(0);
        expect(mismatches(diff, refDiff)).toBe(0);
        // Only the summation order differs (three partial sums).
        expect(Math.abs(errSq - refErr) / refErr, `seed ${seed}`).toBeLessThan(1e-12);
      }
    } finally {
      await pool.dispose();
    }
  });

  it('keeps small matrices on the calling thread', () => {
    const pool = new ParallelQuantizer(2);
    expect(pool.session(new BlockQuantizer({ kind: 'nf', bits: 4, blockSize: 64 }), new Float32Array(4096))).toBeNull();
  });
});
