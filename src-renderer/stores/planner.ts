// The planner's profiles (one per model, quantizer and block size), fetched from the engine's
// cache and prepared once for instant predictions; and the profile job the user started.
import { create } from 'zustand';
import type { ProfileRequest } from '../../src-main/api/contract';
import { prepareProfile, type PreparedProfile } from '../../src-main/engine/rules/planner';
import { errorMessage } from '../transport/types';
import { api } from './api';
import { noteJob } from './jobs';

export const profileKey = (r: Pick<ProfileRequest, 'model' | 'quant' | 'block'>) => `${r.model}|${r.quant}|${r.block}`;

interface PlannerStore {
  /** By profileKey: the prepared profile, null when the engine has none yet. */
  profiles: Record<string, PreparedProfile | null>;
  loading: Record<string, boolean>;
  jobs: Record<string, string>;
  error: string | null;
  load(r: ProfileRequest): Promise<void>;
  start(r: ProfileRequest): Promise<void>;
}

export const usePlanner = create<PlannerStore>((set, get) => ({
  profiles: {},
  loading: {},
  jobs: {},
  error: null,
  async load(r) {
    const key = profileKey(r);
    if (get().loading[key]) return;
    set((s) => ({ loading: { ...s.loading, [key]: true }, error: null }));
    try {
      const p = await api().getProfile(r);
      set((s) => ({ profiles: { ...s.profiles, [key]: p ? prepareProfile(p) : null }, loading: { ...s.loading, [key]: false } }));
    } catch (e) {
      set((s) => ({ loading: { ...s.loading, [key]: false }, error: errorMessage(e) }));
    }
  },
  async start(r) {
    set({ error: null });
    try {
      const job = await api().startProfile(r);
      noteJob(job);
      set((s) => ({ jobs: { ...s.jobs, [profileKey(r)]: job.id } }));
    } catch (e) {
      set({ error: errorMessage(e) });
    }
  },
}));
