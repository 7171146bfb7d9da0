// Profiles kept for the planner, one file per model identity, quantizer and block size, in
// the runs folder's .profiles/ (the app's own folder): a model is profiled once, and a
// changed model (its files' sizes or times) is profiled again.
import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeJsonAtomic } from '../io/atomic-write';
import { readJsonObject } from '../io/json-file';
import { openModelWeights } from '../io/model-weights';
import type { OwnedFile } from '../runs/ownership';
import type { ModelProfile } from '../rules/planner';

export const PROFILES_DIR = '.profiles';

/** A profile file as `--force` recognises it (and the cache reads it): ours when its format says so. */
export const PROFILE_FILE: OwnedFile = { format: 'loftq-profile/1', what: 'a profile', maxBytes: 256 * 2 ** 20 };

/** What identifies the weights a profile was made from: the folder and each file's size and time. */
export async function modelIdentity(modelDir: string, files: readonly string[]): Promise<string> {
  const h = createHash('sha256').update(resolve(modelDir));
  for (const f of files) {
    const s = await stat(f);
    h.update(`\n${f}\t${s.size}\t${s.mtimeMs}`);
  }
  return h.digest('hex').slice(0, 32);
}

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
