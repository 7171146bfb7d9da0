// The open model: the path the user typed (or the demo model) and its summary; the models
// opened before, newest first, which the engine keeps in the user's config folder (so they
// survive a restart of the engine, a new port, another browser) — the first reopens after a
// reload. A list an older version kept in this browser's storage is handed over once.
import { create } from 'zustand';
import type { ModelSummary } from '../../src-main/api/contract';
import { errorMessage } from '../transport/types';
import { api } from './api';

/** Where versions before the engine kept the list stored it in the browser. */
const LEGACY_KEY = 'loftq.recentModels';

function storage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null; // storage disabled
  }
}

/** The list an older version left in this browser (only strings), or []. */
export function readLegacyRecent(): string[] {
  try {
    const v: unknown = JSON.parse(storage()?.getItem(LEGACY_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0 && x.length < 4096).slice(0, 8) : [];
  } catch {
    return [];
  }
}

interface ModelStore {
  path: string;
  /** Models opened before, newest first (the first is reopened on start). */
  recent: string[];
  summary: ModelSummary | null;
  loading: boolean;
  error: string | null;
  setPath(path: string): void;
  open(path: string): Promise<void>;
  /** Fetches the recent list, and reopens the first when nothing is open (after a reload). */
  restore(): Promise<void>;
  forget(path: string): Promise<void>;
}

export const useModel = create<ModelStore>((set, get) => ({
  path: '',
  recent: [],
  summary: null,
  loading: false,
  error: null,
  setPath(path) {
    set({ path });
  },
  async open(path) {
    const p = path.trim();
    if (!p) {
      set({ error: 'Enter the folder of a Hugging Face model.' });
      return;
    }
    set({ path: p, loading: true, error: null });
    try {
      const summary = await api().inspectModel(p);
      set({ summary, loading: false });
      set({ recent: await api().rememberModel(summary.path) });
    } catch (e) {
      set({ loading: false, error: errorMessage(e) });
    }
  },
  async restore() {
    let recent: string[];
    try {
      recent = await api().recentModels();
      const legacy = readLegacyRecent();
      if (legacy.length > 0) {
        // Oldest first, so the newest ends on top.
        if (recent.length === 0) for (const p of [...legacy].reverse()) recent = await api().rememberModel(p);
        storage()?.removeItem(LEGACY_KEY);
      }
    } catch {
      return; // offline: the list comes with the next connection
    }
    set({ recent });
    const last = recent[0];
    if (last && get().summary === null && !get().loading) await get().open(last);
  },
  async forget(path) {
    try {
      set({ recent: await api().forgetModel(path) });
    } catch (e) {
      set({ error: errorMessage(e) });
    }
  },
}));
