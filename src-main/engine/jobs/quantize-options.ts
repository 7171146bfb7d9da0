// The options of a quantize job, their defaults, and validation that needs no model.
import { UserError } from '../errors';
import { INIT_METHODS, type InitMethod, type SvdKind } from '../init/types';
import { codebookLevels, type QuantKind } from '../quant/codebook';

export type Device = 'cpu' | 'webgpu' | 'cuda' | 'native';
export const DEVICES: readonly Device[] = ['cpu', 'webgpu', 'cuda', 'native'];

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
  device: 'cpu',
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
  if (o.quant !== 'nf' && o.quant !== 'uniform') throw new UserError(`--quant must be nf or uniform, got '${o.quant}'`);
  codebookLevels(o.quant, o.bits);
  positiveInt('block', o.block);
  positiveInt('rank', o.rank);
  positiveInt('iters', o.iters);
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new UserError(`--seed must be a non-negative integer, got ${o.seed}`);
  if (!(o.alpha > 0) || !Number.isFinite(o.alpha)) throw new UserError(`--alpha must be a positive number, got ${o.alpha}`);
  if (o.svd !== 'randomized' && o.svd !== 'exact') throw new UserError(`--svd must be randomized or exact, got '${o.svd}'`);
  if (!(DEVICES as readonly string[]).includes(o.device)) {
    throw new UserError(`--device must be one of ${DEVICES.join(', ')}, got '${o.device}'`);
  }
  if (o.device !== 'cpu') {
    throw new UserError(`--device ${o.device} is not available in this build yet; use --device cpu`);
  }
}
