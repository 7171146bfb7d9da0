// The runs folder: every run (CLI runs included), refreshed when the server says it changed;
// run details (layers, metrics) loaded on demand and cached until the next change.
import { create } from 'zustand';
import type { RunDetail, RunSummary } from '../../src-main/api/contract';
import { errorMessage } from '../transport/types';
import { api } from './api';
import { useConnection } from './connection';

interface DetailEntry {
  data: RunDetail | null;
  loading: boolean;
  error: string | null;
  /** The runs version it was loaded at. */
  version: number;
}

interface RunsStore {
  runs: RunSummary[];
  loading: boolean;
  error: string | null;
  /** Increments on every change of the runs folder (details loaded before are stale). */
  version: number;
  details: Record<string, DetailEntry>;
  refresh(): Promise<void>;
  rename(dir: string, name: string): Promise<RunSummary>;
  remove(dir: string): Promise<void>;
  /** Loads a run's details unless a fresh copy is cached. */
  loadDetail(dir: string): Promise<RunDetail | null>;
  changed(): void;
}

export const useRuns = create<RunsStore>((set, get) => ({
  runs: [],
  loading: false,
  error: null,
  version: 0,
  details: {},
  async refresh() {
    set({ loading: true });
    try {
      const runs = await api().listRuns();
      set({ runs, loading: false, error: null });
    } catch (e) {
      // While disconnected the status badge says so; the list reloads on reconnect.
      const offline = useConnection.getState().status.state !== 'open';
      set({ loading: false, error: offline ? null : errorMessage(e) });
    }
  },
  async rename(dir, name) {
    const summary = await api().renameRun(dir, name);
    set((s) => ({ runs: s.runs.map((r) => (r.dir === dir ? summary : r)) }));
    return summary;
  },
  async remove(dir) {
    await api().deleteRun(dir);
    set((s) => ({ runs: s.runs.filter((r) => r.dir !== dir) }));
  },
  async loadDetail(dir) {
    const version = get().version;
    const cached = get().details[dir];
    if (cached && cached.version === version && (cached.data || cached.loading)) return cached.data;
    set((s) => ({ details: { ...s.details, [dir]: { data: cached?.data ?? null, loading: true, error: null, version } } }));
    try {
      const data = await api().getRun(dir);
      set((s) => ({ details: { ...s.details, [dir]: { data, loading: false, error: null, version } } }));
      return data;
    } catch (e) {
      set((s) => ({ details: { ...s.details, [dir]: { data: null, loading: false, error: errorMessage(e), version } } }));
      return null;
    }
  },
  changed() {
    set((s) => ({ version: s.version + 1 }));
    scheduleRefresh();
  },
}));

let refreshTimer: ReturnType<typeof setTimeout> | null = null;

/** Coalesces bursts of runs-changed events into one listRuns call. */
function scheduleRefresh(): void {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    void useRuns.getState().refresh();
  }, 150);
}

/** Mean of a numeric summary field, when the run has it. */
export function summaryNumber(run: RunSummary, key: string): number | undefined {
  const v = run.record.summary?.[key];
  return typeof v === 'number' ? v : undefined;
}

export function configValue<T = unknown>(run: RunSummary, key: string): T | undefined {
  return run.record.config?.[key] as T | undefined;
}
