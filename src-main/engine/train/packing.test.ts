import { describe, expect, it } from 'vitest';
import { UserError } from '../errors';
import { DataOrder, packRows, prepareTrainData, rowCount, tokenFingerprint } from './packing';

const stream = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

describe('packRows', () => {
  it('cuts rows of seqLen + 1 tokens every seqLen tokens, dropping the remainder', () => {
    const rows = packRows(stream(11), 4);
    expect(rows.count).toBe(2);
    expect([...rows.row(0)]).toEqual([0, 1, 2, 3, 4]);
    expect([...rows.row(1)]).toEqual([4, 5, 6, 7, 8]);
    expect(rows.targetTokens).toBe(8);
    expect(() => rows.row(2)).toThrow(RangeError);
    // every token but the first is a target exactly once
    const big = packRows(stream(4 * 10 + 1), 4);
    const targets = new Set<number>();
    for (let i = 0; i < big.count; i++) for (const t of big.row(i).subarray(1)) targets.add(t);
    expect(targets.size).toBe(40);
    expect(rowCount(5, 4)).toBe(1);
    expect(rowCount(4, 4)).toBe(0);
  });

  it('refuses a dataset too short for one row, naming the token count and seq_len', () => {
    expect(() => packRows(stream(4), 4)).toThrow(UserError);
    expect(() => packRows(stream(4), 4)).toThrow('the dataset has 4 tokens, too few for one training row at seq_len 4 (needs 5)');
    expect(() => packRows(new Int32Array(0), 512, '--data')).toThrow(/--data has 0 tokens, too few for one training row at seq_len 512/);
  });
});

describe('prepareTrainData', () => {
  it('holds out the last fraction of the rows', () => {
    const d = prepareTrainData({ tokens: stream(101), seqLen: 10, evalFraction: 0.2 });
    expect(d.train.count).toBe(8);
    expect(d.eval!.count).toBe(2);
    expect([...d.eval!.row(0)]).toEqual([80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90]);
    // no train target is in an eval row
    expect(d.train.row(7)[10]).toBe(80);
  });

  it('uses a separate eval dataset, or none', () => {
    const d = prepareTrainData({ tokens: stream(101), seqLen: 10, evalFraction: 0.2, evalTokens: stream(31) });
    expect(d.train.count).toBe(10);
    expect(d.eval!.count).toBe(3);
    expect(prepareTrainData({ tokens: stream(101), seqLen: 10, evalFraction: 0 }).eval).toBeNull();
    expect(() => prepareTrainData({ tokens: stream(101), seqLen: 10, evalFraction: 0, evalTokens: stream(3) })).toThrow(/--eval-data has 3 tokens/);
  });

  it('refuses data too short to hold out an eval split', () => {
    expect(() => prepareTrainData({ tokens: stream(11), seqLen: 10, evalFraction: 0.1 })).toThrow(/--data has 11 tokens, 1 row at seq_len 10: too few to hold out 1/);
  });
});

describe('DataOrder', () => {
  it('visits every row once per epoch, in a different seeded order each epoch', () => {
    const order = new DataOrder(50, 3);
    const e0 = [...order.permutation(0)];
    const e1 = [...order.permutation(1)];
    expect([...e0].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect([...e1].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(e0).not.toEqual(e1);
    expect([...new DataOrder(50, 3).permutation(0)]).toEqual(e0);
    expect([...new DataOrder(50, 4).permutation(0)]).not.toEqual(e0);
  });

  it('takes batches across epoch boundaries, and resumes exactly from a position', () => {
    const order = new DataOrder(7, 11);
    let pos = { epoch: 0, index: 0 };
    const all: number[] = [];
    const positions = [pos];
    for (let i = 0; i < 6; i++) {
      const t = order.take(pos, 3);
      all.push(...t.rows);
      pos = t.next;
      positions.push(pos);
    }
    expect(pos).toEqual({ epoch: 2, index: 4 });
    expect(all.slice(0, 7)).toEqual([...order.permutation(0)]);
    expect(all.slice(7, 14)).toEqual([...order.permutation(1)]);
    // A fresh order (a resumed run) from the position after batch 2 sees the same batches.
    const fresh = new DataOrder(7, 11);
    let p = positions[2];
    const rest: number[] = [];
    for (let i = 2; i < 6; i++) {
      const t = fresh.take(p, 3);
      rest.push(...t.rows);
      p = t.next;
    }
    expect(rest).toEqual(all.slice(6));
    expect(() => order.take({ epoch: 0, index: 8 }, 1)).toThrow(/invalid data position/);
  });
});

describe('tokenFingerprint', () => {
  it('identifies the tokens', () => {
    expect(tokenFingerprint(stream(10))).toBe(tokenFingerprint(stream(10)));
    expect(tokenFingerprint(stream(10))).not.toBe(tokenFingerprint(stream(11)));
    expect(tokenFingerprint(stream(10).subarray(2))).toBe(tokenFingerprint(Int32Array.from([2, 3, 4, 5, 6, 7, 8, 9])));
  });
});
