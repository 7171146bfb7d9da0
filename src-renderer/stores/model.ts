// The open model: the path the user typed (or the demo model) and its summary; the models
// opened before, newest first, and the last one, kept in the browser's storage so a reload
// (or the next start of the app) opens it again.
import { create } from 'zustand';
import type { ModelSummary } from '../../src-main/api/contract';
import { errorMessage } from '../transport/types';
import { api } from './api';

const RECENT_KEY = 'loftq.recentModels';
const MAX_RECENT = 8;

function storage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null; // storage disabled: nothing is remembered
  }
}

/** The models opened before (newest first), as stored: only strings, at most MAX_RECENT. */
export function readRecent(): string[] {
  try {
    const v: unknown = JSON.parse(storage()?.getItem(RECENT_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0 && x.length < 4096).slice(0, MAX_RECENT) : [];
  } catch {
    return [];
  }
}

function remember(path: string): string[] {
  const recent = [path, ...readRecent().filter((p) => p !== path)].slice(0, MAX_RECENT);
  try {
    storage()?.setItem(RECENT_KEY, JSON.stringify(recent));
  } catch {
    // full or disabled storage: the list is just not kept
  }
  return recent;
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
  /** Reopens the last model opened, when nothing is open (after a reload). */
  restore(): Promise<void>;
  forget(path: string): void;
}

export const useModel = create<ModelStore>((set, get) => ({
  path: '',
  recent: readRecent(),
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
      set({ summary, loading: false, recent: remember(p) });
    } catch (e) {
      set({ loading: false, error: errorMessage(e) });
    }
  },
  async restore() {
    const last = readRecent()[0];
    if (last && get().summary === null && !get().loading) await get().open(last);
  },
  forget(path) {
    const recent = readRecent().filter((p) => p !== path);
    try {
      storage()?.setItem(RECENT_KEY, JSON.stringify(recent));
    } catch {
      // as above
    }
    set({ recent });
  },
}));
