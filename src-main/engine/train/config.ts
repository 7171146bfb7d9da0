// The training configuration: every option of `loftq train`, resolved, with the CLI flag that
// sets it (so that errors and the resume check can name it). A checkpoint stores this record;
// resuming with a different one is refused (checkpoint.ts), because the result would no
// longer be the one an uninterrupted run gives.
import { UserError } from '../errors';

export type DecaySchedule = 'cosine' | 'linear' | 'constant';

/** A token stream's identity: where it was read and what it holds. */
export interface DataIdentity {
  path: string;
  tokens: number;
  /** sha256 of the token ids (int32 little endian), hex. */
  sha256: string;
}

export interface TrainConfig {
  /** The training data (or the whole dataset when the eval split is held out of it). */
  data: DataIdentity;
  /** A separate evaluation dataset; null: the last `evalFraction` of --data's rows. */
  evalData: DataIdentity | null;
  seed: number;
  /** Optimizer steps in the whole run (the schedule's length). */
  steps: number;
  /** Rows (sequences) per micro-batch. */
  batch: number;
  /** Micro-batches per optimizer step (gradient accumulation). */
  accum: number;
  seqLen: number;
  /** Peak learning rate. */
  lr: number;
  /** The floor the decay ends at (absolute, ≤ lr). */
  minLr: number;
  warmup: number;
  schedule: DecaySchedule;
  weightDecay: number;
  /** Parameter-name patterns (`*` wildcard) exempt from weight decay. */
  noDecay: string[];
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm clip; 0 turns clipping off. */
  maxGradNorm: number;
  /** Evaluate every N steps (and after the last one); 0: never. */
  evalEvery: number;
  /** Fraction of --data's rows held out for evaluation when there is no --eval-data. */
  evalFraction: number;
  /** Checkpoint every N steps (and after the last one); 0: only at the end and on cancel. */
  checkpointEvery: number;
}

/** The flag (or description) naming each field in messages, in the order they are checked. */
export const CONFIG_FIELDS: ReadonlyArray<readonly [keyof TrainConfig, string]> = [
  ['data', '--data'],
  ['evalData', '--eval-data'],
  ['seqLen', '--seq-len'],
  ['seed', '--seed'],
  ['steps', '--steps'],
  ['batch', '--batch'],
  ['accum', '--accum'],
  ['lr', '--lr'],
  ['minLr', '--min-lr'],
  ['warmup', '--warmup'],
  ['schedule', '--schedule'],
  ['weightDecay', '--weight-decay'],
  ['noDecay', '--no-decay'],
  ['beta1', '--beta1'],
  ['beta2', '--beta2'],
  ['eps', '--eps'],
  ['maxGradNorm', '--max-grad-norm'],
  ['evalFraction', '--eval-fraction'],
  ['evalEvery', '--eval-every'],
  ['checkpointEvery', '--checkpoint-every'],
];

/** Fields that may change when a run is resumed: they do not change the trained weights. */
export const RESUMABLE_CHANGES: ReadonlySet<keyof TrainConfig> = new Set(['evalEvery', 'checkpointEvery']);

export function flagOf(field: keyof TrainConfig): string {
  return CONFIG_FIELDS.find(([f]) => f === field)?.[1] ?? field;
}

export const TRAIN_DEFAULTS: Readonly<Omit<TrainConfig, 'data' | 'evalData' | 'noDecay'>> & { noDecay: readonly string[] } = {
  seed: 0,
  steps: 200,
  batch: 4,
  accum: 1,
  seqLen: 512,
  lr: 2e-4,
  minLr: 0,
  warmup: 10,
  schedule: 'cosine',
  weightDecay: 0,
  noDecay: [],
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  maxGradNorm: 1,
  evalEvery: 50,
  evalFraction: 0.05,
  checkpointEvery: 50,
};

export type TrainOptionsInput = Partial<Omit<TrainConfig, 'data' | 'evalData' | 'noDecay'>> & {
  data: DataIdentity;
  evalData?: DataIdentity | null;
  noDecay?: readonly string[];
};

/** Fills the defaults and validates every field (UserErrors name the flag). */
export function resolveTrainConfig(input: TrainOptionsInput): TrainConfig {
  const c: TrainConfig = {
    ...TRAIN_DEFAULTS,
    ...dropUndefined(input),
    data: input.data,
    evalData: input.evalData ?? null,
    noDecay: [...(input.noDecay ?? TRAIN_DEFAULTS.noDecay)],
  };
  validateTrainConfig(c);
  return c;
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function validateTrainConfig(c: TrainConfig): void {
  const int = (field: keyof TrainConfig, min: number) => {
    const v = c[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw new UserError(`${flagOf(field)} must be an integer ≥ ${min} (got ${String(v)})`);
    }
  };
  const num = (field: keyof TrainConfig, ok: (v: number) => boolean, what: string) => {
    const v = c[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new UserError(`${flagOf(field)} must be ${what} (got ${String(v)})`);
  };
  int('seed', 0);
  if (c.seed > 0xffffffff) throw new UserError(`--seed must be below 2^32 (got ${c.seed})`);
  int('steps', 1);
  int('batch', 1);
  int('accum', 1);
  int('seqLen', 1);
  int('warmup', 0);
  int('evalEvery', 0);
  int('checkpointEvery', 0);
  num('lr', (v) => v > 0, 'a positive number');
  num('minLr', (v) => v >= 0 && v <= c.lr, `between 0 and --lr (${c.lr})`);
  num('weightDecay', (v) => v >= 0, 'a number ≥ 0');
  num('beta1', (v) => v >= 0 && v < 1, 'in [0, 1)');
  num('beta2', (v) => v >= 0 && v < 1, 'in [0, 1)');
  num('eps', (v) => v > 0, 'a positive number');
  num('maxGradNorm', (v) => v >= 0, 'a number ≥ 0 (0 turns clipping off)');
  num('evalFraction', (v) => v >= 0 && v < 1, 'in [0, 1)');
  if (c.warmup > c.steps) throw new UserError(`--warmup (${c.warmup}) must not exceed --steps (${c.steps})`);
  if (!['cosine', 'linear', 'constant'].includes(c.schedule)) {
    throw new UserError(`--schedule must be cosine, linear or constant (got ${String(c.schedule)})`);
  }
  if (!Array.isArray(c.noDecay) || !c.noDecay.every((p) => typeof p === 'string' && p !== '')) {
    throw new UserError('--no-decay must be a list of parameter-name patterns');
  }
}
