// Profiles kept for the planner, one file per model identity, quantizer and block size, in
// the runs folder's .profiles/ (the app's own folder): a model is profiled once, and a
// changed model (its files' sizes or times) is profiled again.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeJsonAtomic } from '../io/atomic-write';
import { readJsonObject } from '../io/json-file';
import { openModelWeights } from '../io/model-weights';
import type { ModelProfile } from '../rules/planner';
import type { EventSink } from '../jobs/events';
import { modelIdentity, PROFILE_FILE, runProfile, type ProfileOptions } from './profile-job';

export const PROFILES_DIR = '.profiles';

export async function profileKey(modelDir: string, quant: string, block: number): Promise<string> {
  const weights = await openModelWeights(resolve(modelDir));
  const identity = await modelIdentity(modelDir, weights.files.map((f) => f.path));
  return `${identity}-${quant}-${block}`;
}

export async function readCachedProfile(runsDir: string, modelDir: string, quant: string, block: number): Promise<ModelProfile | null> {
  const path = join(runsDir, PROFILES_DIR, `${await profileKey(modelDir, quant, block)}.json`);
  const p = (await readJsonObject(path, { optional: true, maxBytes: PROFILE_FILE.maxBytes })) as ModelProfile | null;
  return p && p.format === PROFILE_FILE.format && Array.isArray(p.matrices) ? p : null;
}

export async function writeCachedProfile(runsDir: string, profile: ModelProfile): Promise<string> {
  const dir = join(runsDir, PROFILES_DIR);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${profile.model.identity}-${profile.quant}-${profile.block}.json`);
  await writeJsonAtomic(path, profile);
  return path;
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

