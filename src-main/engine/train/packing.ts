// Sequence packing and the seeded data order.
//
// Packing: the token stream is cut into rows of seqLen + 1 tokens (inputs are a row's first
// seqLen tokens, targets its last seqLen), one row starting every seqLen tokens. Consecutive
// rows share one token (row i's last target is row i+1's first input), so every token of the
// stream but the first is a target exactly once. No padding; the tokens after the last
// complete row are dropped. Rows are views of the stream, not copies.
//
// Held-out split: the last `evalFraction` of the rows (the train rows never target a token
// of an eval row), or a separate dataset packed the same way.
//
// Order: each epoch visits every train row once, in a permutation drawn from the project's
// Rng seeded by (seed, epoch). The position (epoch, index) is all a checkpoint needs to resume
// the exact same batches.
import { createHash } from 'node:crypto';
import { UserError } from '../errors';
import { HOST_LITTLE_ENDIAN } from '../io/dtypes';
import { Rng } from '../util/random';

export class PackedRows {
  constructor(
    readonly tokens: Int32Array,
    readonly seqLen: number,
    /** Index of the first row in the stream, and the number of rows. */
    readonly first: number,
    readonly count: number,
  ) {}

  /** Row i: seqLen + 1 tokens (a view). */
  row(i: number): Int32Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`row ${i} out of range [0, ${this.count})`);
    const start = (this.first + i) * this.seqLen;
    return this.tokens.subarray(start, start + this.seqLen + 1);
  }

  /** Target tokens in all the rows. */
  get targetTokens(): number {
    return this.count * this.seqLen;
  }
}

/** How many rows a stream of n tokens packs into. */
export function rowCount(n: number, seqLen: number): number {
  return n < seqLen + 1 ? 0 : Math.floor((n - 1) / seqLen);
}

/** All the rows of a token stream; a UserError when not even one fits. */
export function packRows(tokens: Int32Array, seqLen: number, what = 'the dataset'): PackedRows {
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new UserError(`--seq-len must be a positive integer (got ${seqLen})`);
  const count = rowCount(tokens.length, seqLen);
  if (count === 0) {
    throw new UserError(
      `${what} has ${tokens.length} tokens, too few for one training row at seq_len ${seqLen} ` +
        `(needs ${seqLen + 1}): use more data or a shorter --seq-len`,
    );
  }
  return new PackedRows(tokens, seqLen, 0, count);
}

export interface TrainData {
  train: PackedRows;
  /** Null when nothing is held out (evalFraction 0 and no eval dataset). */
  eval: PackedRows | null;
}

/**
 * Packs the training stream and chooses the eval rows: the separate eval stream when given,
 * else the last max(1, round(count·evalFraction)) rows of the training stream.
 */
export function prepareTrainData(o: { tokens: Int32Array; seqLen: number; evalFraction: number; evalTokens?: Int32Array | null }): TrainData {
  const all = packRows(o.tokens, o.seqLen, '--data');
  if (o.evalTokens) return { train: all, eval: packRows(o.evalTokens, o.seqLen, '--eval-data') };
  if (!(o.evalFraction >= 0 && o.evalFraction < 1)) throw new UserError(`--eval-fraction must be in [0, 1) (got ${o.evalFraction})`);
  if (o.evalFraction === 0) return { train: all, eval: null };
  const held = Math.max(1, Math.round(all.count * o.evalFraction));
  if (held >= all.count) {
    throw new UserError(
      `--data has ${o.tokens.length} tokens, ${all.count} row${all.count === 1 ? '' : 's'} at seq_len ${o.seqLen}: too few to hold out ` +
        `${held} for evaluation and still train (use more data, a shorter --seq-len, or --eval-data)`,
    );
  }
  return { train: new PackedRows(o.tokens, o.seqLen, 0, all.count - held), eval: new PackedRows(o.tokens, o.seqLen, all.count - held, held) };
}

/** sha256 of the token ids as int32 little endian (what a checkpoint records of its data). */
export function tokenFingerprint(tokens: Int32Array): string {
  const h = createHash('sha256');
  if (HOST_LITTLE_ENDIAN) h.update(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength));
  else {
    const buf = new Uint8Array(tokens.length * 4);
    const dv = new DataView(buf.buffer);
    tokens.forEach((t, i) => dv.setInt32(i * 4, t, true));
    h.update(buf);
  }
  return h.digest('hex');
}

export interface DataPosition {
  epoch: number;
  /** Index into the epoch's permutation of the next row to take. */
  index: number;
}

export const START_POSITION: DataPosition = { epoch: 0, index: 0 };

/** The seeded order in which training rows are visited, epoch after epoch. */
export class DataOrder {
  private cached: { epoch: number; perm: Uint32Array } | null = null;

  constructor(
    readonly rows: number,
    readonly seed: number,
  ) {
    if (!Number.isSafeInteger(rows) || rows < 1) throw new Error(`DataOrder: rows must be a positive integer (got ${rows})`);
  }

  /** The epoch's permutation of 0..rows−1 (Fisher–Yates with Rng(seed ⊕ epoch)). */
  permutation(epoch: number): Uint32Array {
    if (this.cached?.epoch === epoch) return this.cached.perm;
    const perm = new Uint32Array(this.rows);
    for (let i = 0; i < this.rows; i++) perm[i] = i;
    const rng = new Rng(epochSeed(this.seed, epoch));
    for (let i = this.rows - 1; i > 0; i--) {
      const j = Math.floor(rng.uniform() * (i + 1));
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    this.cached = { epoch, perm };
    return perm;
  }

  /** The next n row indices from `pos` (crossing into the next epoch as needed), and the position after them. */
  take(pos: DataPosition, n: number): { rows: number[]; next: DataPosition } {
    checkPosition(pos, this.rows);
    let { epoch, index } = pos;
    const out: number[] = [];
    while (out.length < n) {
      if (index === this.rows) {
        epoch++;
        index = 0;
      }
      out.push(this.permutation(epoch)[index++]);
    }
    if (index === this.rows) {
      epoch++;
      index = 0;
    }
    return { rows: out, next: { epoch, index } };
  }
}

export function checkPosition(pos: DataPosition, rows: number): void {
  if (!Number.isSafeInteger(pos.epoch) || pos.epoch < 0 || !Number.isSafeInteger(pos.index) || pos.index < 0 || pos.index > rows) {
    throw new Error(`invalid data position ${JSON.stringify(pos)} for ${rows} rows`);
  }
}

// A distinct 32-bit seed per (seed, epoch): one round of a murmur3-style finalizer.
function epochSeed(seed: number, epoch: number): number {
  let h = (seed >>> 0) ^ Math.imul(epoch + 1, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
