// Which view is shown (and for which run), mirrored in the URL's hash (#/layers?run=...) so
// that views can be linked, reloaded and opened directly; the query keeps the access token.
import { create } from 'zustand';

export const VIEWS = ['models', 'quantize', 'runs', 'layers', 'train', 'compare', 'export'] as const;
export type View = (typeof VIEWS)[number];

export const VIEW_LABELS: Record<View, string> = {
  models: 'Models',
  quantize: 'Quantize',
  runs: 'Runs',
  layers: 'Layer error',
  train: 'Fine-tune',
  compare: 'Compare',
  export: 'Export',
};

interface NavStore {
  view: View;
  /** The run the Layer error and Export views show (its folder). */
  run: string | null;
  go(view: View, run?: string | null): void;
}

export function parseHash(hash: string): { view: View; run: string | null } {
  const m = /^#\/([a-z]+)(?:\?(.*))?$/.exec(hash);
  const view = m && (VIEWS as readonly string[]).includes(m[1]) ? (m[1] as View) : 'models';
  const run = m?.[2] ? new URLSearchParams(m[2]).get('run') : null;
  return { view, run };
}

export function formatHash(view: View, run: string | null): string {
  return run ? `#/${view}?${new URLSearchParams({ run }).toString()}` : `#/${view}`;
}

const initial = typeof location !== 'undefined' ? parseHash(location.hash) : { view: 'models' as View, run: null };

export const useNav = create<NavStore>((set, get) => ({
  ...initial,
  go(view, run) {
    const next = { view, run: run === undefined ? get().run : run };
    set(next);
    if (typeof location !== 'undefined') {
      const hash = formatHash(next.view, next.run);
      if (location.hash !== hash) history.pushState(null, '', hash);
    }
  },
}));

/** Follows the browser's back/forward buttons. */
export function followHash(): () => void {
  const onPop = () => useNav.setState(parseHash(location.hash));
  window.addEventListener('popstate', onPop);
  window.addEventListener('hashchange', onPop);
  return () => {
    window.removeEventListener('popstate', onPop);
    window.removeEventListener('hashchange', onPop);
  };
}
