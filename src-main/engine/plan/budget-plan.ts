// `loftq quantize --budget BITS --profile FILE`: the bits per matrix (and, with --rank auto,
// the rank) the planner chooses for an average-bits budget, from a profile `loftq profile`
// wrote, turned into the --bits/--bits-map/--rank/--alpha of an ordinary run. Checked before
// anything runs: the profile must be of this model (its files unchanged), quantizer and block,
// and a budget outside what the choices reach is refused with the range.
import { resolve } from 'node:path';
import { UserError } from '../errors';
import { readModelConfig } from '../io/hf-config';
import { readJsonObject } from '../io/json-file';
import { openModelWeights } from '../io/model-weights';
import { discoverTargets, parseTargets } from '../io/targets';
import { scaleBitsOf } from '../rules/average-bits';
import { commonestBits, encodeBitsMap } from '../rules/bits-map-encoder';
import { candidateRanks, planBudget } from '../rules/budget';
import { PREDICTION_BASIS, prepareProfile, type ModelProfile, type PlanMethod } from '../rules/planner';
import { modelIdentity } from './profile-cache';

export interface BudgetPlanOptions {
  model: string;
  profile: string;
  budget: number;
  method: PlanMethod;
  quant: 'nf' | 'uniform' | 'ggml';
  block: number;
  targets: string;
  /** A fixed rank, or 'auto' for the planner's choice. */
  rank: number | 'auto';
  /** With rank 'auto': the scaling s to keep (α = s·r); absent, α = r. */
  scaling?: number;
}

export interface BudgetPlanResult {
  bits: number;
  bitsMap: string | undefined;
  rank: number;
  alpha: number | undefined;
  average: number;
  predictedMean: number;
  /** One line for the user: what was chosen and why. */
  note: string;
}

const MAX_PROFILE_BYTES = 256 * 2 ** 20;

export async function planFromProfile(o: BudgetPlanOptions): Promise<BudgetPlanResult> {
  if (!Number.isFinite(o.budget) || o.budget <= 0) throw new UserError(`--budget must be a positive number of bits per weight, got ${o.budget}`);
  const profile = (await readJsonObject(o.profile, { maxBytes: MAX_PROFILE_BYTES })) as unknown as ModelProfile;
  if (profile?.format !== 'loftq-profile/1' || !Array.isArray(profile.matrices)) throw new UserError(`${o.profile} is not a profile written by loftq profile`);
  const modelDir = resolve(o.model);
  const config = await readModelConfig(modelDir);
  const weights = await openModelWeights(modelDir);
  const identity = await modelIdentity(modelDir, weights.files.map((f) => f.path));
  if (profile.model?.identity !== identity) throw new UserError(`${o.profile} was made from another model, or this model's files changed since: run loftq profile again`);
  if (profile.quant !== o.quant || profile.block !== o.block) {
    throw new UserError(`${o.profile} profiles quantizer ${profile.quant} with block ${profile.block}, but this run asks ${o.quant} with block ${o.block}: profile with the same --quant and --block`);
  }
  const targets = discoverTargets(weights, config, parseTargets(o.targets));
  const prepared = prepareProfile(profile);
  // The widths every profiled matrix has (a q4_0 profile has only 4).
  const choices = [2, 3, 4, 8].filter((b) => profile.matrices.every((m) => m.bits[String(b)] !== undefined));
  const smallest = Math.min(...targets.map((t) => Math.min(...t.shape)));
  const ranks = o.rank === 'auto' ? candidateRanks(prepared.maxRank, smallest) : o.rank;
  const plan = planBudget({ profile: prepared, names: targets.map((t) => t.name), choices, block: o.block, scaleBits: scaleBitsOf(o.quant), method: o.method, rank: ranks, budget: o.budget });
  if (!plan.ok) throw new UserError(`--budget: ${plan.reason}`);
  const bits = commonestBits(plan.bits) ?? choices[0];
  const bitsMap = encodeBitsMap(targets, plan.bits, bits) || undefined;
  const alpha = o.rank === 'auto' ? Number(((o.scaling ?? 1) * plan.rank).toPrecision(6)) : undefined;
  const chosen =
    o.rank === 'auto'
      ? `rank ${plan.rank} (chosen), alpha ${alpha} (${o.scaling === undefined ? 'α = r' : `s = α/r kept at ${o.scaling}`})`
      : `rank ${plan.rank}`;
  const note =
    `planned ${plan.average.toFixed(3)} bits per weight (adapter included) for a budget of ${o.budget}: --bits ${bits}` +
    `${bitsMap ? ` --bits-map ${bitsMap}` : ''}, ${chosen}; predicted mean err ${plan.prediction.mean.toFixed(4)} (${PREDICTION_BASIS[o.method]})`;
  return { bits, bitsMap, rank: plan.rank, alpha, average: plan.average, predictedMean: plan.prediction.mean, note };
}
