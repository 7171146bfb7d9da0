// The options of a quantize job, their defaults, and validation that needs no model.
import { UserError } from '../errors';
import { INIT_METHODS, MAX_ITERS, type InitMethod, type SvdKind } from '../init/types';
import { MAX_BLOCK_SIZE } from '../quant/blockwise';
import { codebookLevels, GGML_BLOCK_SIZE, type QuantKind } from '../quant/codebook';
import { checkDeviceChoice, type DeviceChoice } from '../tensor/devices';

export type Device = DeviceChoice;

export interface QuantizeOptions {
  model: string;
  out: string;
  method: InitMethod;
  bits: number;
  bitsMap?: string;
  quant: QuantKind;
  block: number;
  rank: number;
  alpha: number;
  rslora: boolean;
  iters: number;
  svd: SvdKind;
  targets: string;
  device: Device;
  seed: number;
  force: boolean;
}

export const QUANTIZE_DEFAULTS: Omit<QuantizeOptions, 'model' | 'out'> = {
  method: 'loftq',
  bits: 4,
  quant: 'nf',
  block: 64,
  rank: 16,
  alpha: 16,
  rslora: false,
  iters: 5,
  svd: 'randomized',
  targets: 'all-linear',
  device: 'auto',
  seed: 0,
  force: false,
};

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new UserError(`--${name} must be a positive integer, got ${v}`);
}

export function validateQuantizeOptions(o: QuantizeOptions): void {
  if (!(INIT_METHODS as readonly string[]).includes(o.method)) {
    throw new UserError(`--method must be one of ${INIT_METHODS.join(', ')}, got '${o.method}'`);
  }
  if (o.quant !== 'nf' && o.quant !== 'uniform' && o.quant !== 'ggml') throw new UserError(`--quant must be nf, uniform, q4_0 or q8_0, got '${o.quant}'`);
  codebookLevels(o.quant, o.bits);
  if (o.quant === 'ggml' && o.block !== GGML_BLOCK_SIZE) throw new UserError(`llama.cpp's q4_0 and q8_0 use blocks of ${GGML_BLOCK_SIZE}, got --block ${o.block}`);
  positiveInt('block', o.block);
  positiveInt('rank', o.rank);
  if (o.block > MAX_BLOCK_SIZE) throw new UserError(`--block must be at most ${MAX_BLOCK_SIZE}, got ${o.block}`);
  positiveInt('iters', o.iters);
  if (o.iters > MAX_ITERS) {
    throw new UserError(`--iters must be at most ${MAX_ITERS}, got ${o.iters} (LoftQ keeps its best step and stops once the error stops falling, so more steps change nothing)`);
  }
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new UserError(`--seed must be a non-negative integer, got ${o.seed}`);
  if (!(o.alpha > 0) || !Number.isFinite(o.alpha)) throw new UserError(`--alpha must be a positive number, got ${o.alpha}`);
  if (o.svd !== 'randomized' && o.svd !== 'exact') throw new UserError(`--svd must be randomized or exact, got '${o.svd}'`);
  checkDeviceChoice(o.device);
}

/** llama.cpp's names for its formats, as --quant takes them: each fixes the bits. */
const GGML_NAMES: Record<string, number> = { q4_0: 4, q8_0: 8 };

/**
 * The quantizer chosen by `--quant NAME` with `--bits`/`--block` as given (undefined: not
 * given): nf and uniform take the defaults; q4_0 and q8_0 (also `ggml` with --bits 4 or 8)
 * fix block 32, and the bits unless --bits-map mixes them.
 */
export function quantChoice(name: string | undefined, bits: number | undefined, block: number | undefined): Pick<QuantizeOptions, 'quant' | 'bits' | 'block'> {
  const d = QUANTIZE_DEFAULTS;
  const q = name ?? d.quant;
  if (q in GGML_NAMES || q === 'ggml') {
    const fixed = GGML_NAMES[q] as number | undefined;
    if (fixed !== undefined && bits !== undefined && bits !== fixed) throw new UserError(`--quant ${q} is ${fixed}-bit; --bits ${bits} disagrees (mix q4_0 and q8_0 with --quant ggml --bits-map)`);
    return { quant: 'ggml', bits: fixed ?? bits ?? 4, block: block ?? GGML_BLOCK_SIZE };
  }
  return { quant: q as QuantKind, bits: bits ?? d.bits, block: block ?? d.block };
}
