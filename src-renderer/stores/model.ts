// The open model: the path the user typed (or the demo model) and its summary.
import { create } from 'zustand';
import type { ModelSummary } from '../../src-main/api/contract';
import { errorMessage } from '../transport/types';
import { api } from './api';

interface ModelStore {
  path: string;
  summary: ModelSummary | null;
  loading: boolean;
  error: string | null;
  setPath(path: string): void;
  open(path: string): Promise<void>;
}

export const useModel = create<ModelStore>((set) => ({
  path: '',
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
    } catch (e) {
      set({ loading: false, error: errorMessage(e) });
    }
  },
}));
