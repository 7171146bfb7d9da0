// Which runs the Compare view overlays (kept while the user moves between views).
import { create } from 'zustand';

interface CompareStore {
  selected: string[];
  /** The user changed the selection (otherwise the newest finished runs are shown). */
  touched: boolean;
  set(dirs: string[]): void;
}

export const useCompare = create<CompareStore>((set) => ({
  selected: [],
  touched: false,
  set(dirs) {
    set({ selected: dirs, touched: true });
  },
}));
