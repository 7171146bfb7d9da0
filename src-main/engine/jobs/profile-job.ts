// The planner's profile of a model: for every target matrix W and bit width, ‖W − q(W)‖² and
// the leading singular values of W − q(W) up to a maximum rank (rules/planner.ts turns them into
// the error of any bits and rank without running anything). One pass over the weights on the
// device the job opens; W − q(W) is the same fused quantize pass a run makes.
import { resolve } from 'node:path';
import { CancelledError, UserError } from '../errors';
import { readModelConfig } from '../io/hf-config';
import { checkModelTensors } from '../io/model-check';
import { openModelWeights } from '../io/model-weights';
import { discoverTargets, parseTargets } from '../io/targets';
import { solverFor } from '../lowrank';
import { codebookFor } from '../quant/blockwise';
import { GGML_BLOCK_SIZE, type QuantKind } from '../quant/codebook';
import { TensorScope } from '../tensor/device';
import { openDevice, type DeviceChoice } from '../tensor/devices';
import { matrix } from '../tensor/matrix';
import type { MatrixProfile, ModelProfile } from '../rules/planner';
import { modelIdentity, readCachedProfile, writeCachedProfile } from '../plan/profile-cache';
import type { EventSink } from './events';

export interface ProfileOptions {
  model: string;
  quant: QuantKind;
  block: number;
  /** Singular values kept per matrix and bit width (capped at each matrix's smaller side). */
  maxRank: number;
  targets?: string;
  /** Bit widths to profile (default: every one the quantizer has). */
  bits?: number[];
  device?: DeviceChoice;
  seed?: number;
  signal?: AbortSignal;
  onEvent?: EventSink;
}

export const MAX_PROFILE_RANK = 512;

export async function runProfile(o: ProfileOptions): Promise<ModelProfile> {
  if (!Number.isInteger(o.maxRank) || o.maxRank < 1 || o.maxRank > MAX_PROFILE_RANK) throw new UserError(`--max-rank must be a whole number from 1 to ${MAX_PROFILE_RANK}, got ${o.maxRank}`);
  const bitsList = o.bits ?? (o.quant === 'ggml' ? [4, 8] : [2, 3, 4, 8]);
  const codebooks = bitsList.map((bits) => codebookFor({ kind: o.quant, bits: bits as 2 | 3 | 4 | 8, blockSize: o.block }));
  const modelDir = resolve(o.model);
  const config = await readModelConfig(modelDir);
  const weights = await openModelWeights(modelDir);
  const targets = discoverTargets(weights, config, parseTargets(o.targets ?? 'all-linear'));
  checkModelTensors(weights, config);
  if (targets.length === 0) throw new UserError(`${modelDir}: no target matrices found`);
  if (o.quant === 'ggml') {
    const ragged = targets.find((t) => t.shape[1] % GGML_BLOCK_SIZE !== 0);
    if (ragged) throw new UserError(`${ragged.name} [${ragged.shape.join(', ')}]: llama.cpp's q4_0/q8_0 need rows of a multiple of ${GGML_BLOCK_SIZE} values`);
  }
  const identity = await modelIdentity(modelDir, weights.files.map((f) => f.path));
  const started = performance.now();
  const { device } = await openDevice(o.device ?? 'auto');
  const solver = solverFor('randomized', { seed: o.seed ?? 0 });
  const matrices: MatrixProfile[] = [];
  try {
    for (let i = 0; i < targets.length; i++) {
      if (o.signal?.aborted) throw new CancelledError();
      const t = targets[i];
      const [rows, cols] = t.shape;
      o.onEvent?.({ type: 'matrix', index: i, total: targets.length, name: t.name, shape: [rows, cols], bits: bitsList[0] });
      const scope = new TensorScope();
      try {
        const w = scope.track(await device.upload(matrix(rows, cols, await weights.readF32(t.weight))));
        const entry: MatrixProfile = { name: t.name, shape: [rows, cols], w_sq: await device.sumSquares(w), bits: {} };
        const rank = Math.min(o.maxRank, rows, cols);
        for (let b = 0; b < bitsList.length; b++) {
          const q = scope.track(await device.allocQuantized(rows * cols, codebooks[b]));
          const diff = scope.track(await device.zeros(rows, cols));
          const sums = await device.quantize(w, w, q, codebooks[b], { diff });
          const svd = await solver(device, diff, rank);
          scope.track(svd.U);
          scope.track(svd.V);
          entry.bits[String(bitsList[b])] = { err_sq: sums.errSq, sv: Array.from(svd.S) };
          scope.release(svd.U);
          scope.release(svd.V);
          scope.release(q);
          scope.release(diff);
        }
        matrices.push(entry);
      } finally {
        scope.dispose();
      }
    }
  } finally {
    await device.dispose();
  }
  return {
    format: 'loftq-profile/1',
    model: { path: modelDir, identity },
    quant: o.quant,
    block: o.block,
    max_rank: o.maxRank,
    matrices,
    seconds: (performance.now() - started) / 1000,
  };
}

export interface CachedProfileOptions extends Omit<ProfileOptions, 'signal' | 'onEvent'> {
  /** The runs folder whose .profiles/ holds the cache. */
  runsDir: string;
}

/** The app's profile job: nothing to do when a profile of at least maxRank is cached, else profile and cache it. */
export async function profileIntoCache(o: CachedProfileOptions, control: { signal?: AbortSignal; onEvent?: EventSink } = {}) {
  const cached = await readCachedProfile(o.runsDir, o.model, o.quant, o.block);
  if (cached && cached.max_rank >= o.maxRank) return { cached: true, matrices: cached.matrices.length };
  const { runsDir, ...options } = o;
  const profile = await runProfile({ ...options, ...control });
  await writeCachedProfile(runsDir, profile);
  return { cached: false, matrices: profile.matrices.length, seconds: profile.seconds };
}
