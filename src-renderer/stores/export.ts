// The Export form and the export job it started.
import { create } from 'zustand';
import type { ExportRequest } from '../../src-main/api/contract';
import { errorMessage } from '../transport/types';
import { api } from './api';
import { noteJob } from './jobs';

interface ExportStore {
  format: 'peft' | 'gguf' | 'merged';
  out: string;
  /** The user typed the folder (otherwise it follows the run and format). */
  outTouched: boolean;
  force: boolean;
  jobId: string | null;
  submitting: boolean;
  error: string | null;
  update(patch: Partial<Pick<ExportStore, 'format' | 'out' | 'outTouched' | 'force'>>): void;
  start(request: ExportRequest): Promise<void>;
}

export const useExport = create<ExportStore>((set) => ({
  format: 'peft',
  out: '',
  outTouched: false,
  force: false,
  jobId: null,
  submitting: false,
  error: null,
  update(patch) {
    set(patch);
  },
  async start(request) {
    set({ submitting: true, error: null });
    try {
      const job = await api().startExport(request);
      noteJob(job);
      set({ submitting: false, jobId: job.id });
    } catch (e) {
      set({ submitting: false, error: errorMessage(e) });
    }
  },
}));

/** exports/<run>-<format> next to the runs folder, in the server's path style. */
export function suggestExportDir(runsDir: string, runName: string, format: string): string {
  const sep = runsDir.includes('\\') && !runsDir.includes('/') ? '\\' : '/';
  const trimmed = runsDir.replace(/[\\/]+$/, '');
  const cut = Math.max(trimmed.lastIndexOf('/'), trimmed.lastIndexOf('\\'));
  const parent = cut > 0 ? trimmed.slice(0, cut) : trimmed;
  const leaf = runName.split(/[\\/]/).pop() ?? runName;
  return `${parent}${sep}exports${sep}${leaf}-${format}`;
}
