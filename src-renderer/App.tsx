// The app shell: sidebar (navigation, jobs, connection) and the current view.
import { useEffect } from 'react';
import { ConnectionBanner } from './components/ConnectionBanner';
import { ConnectionBadge, JobTray, Nav } from './components/Shell';
import { CompareView } from './features/compare/CompareView';
import { ExportView } from './features/export/ExportView';
import { LayerErrorView } from './features/layer-error/LayerErrorView';
import { ModelsView } from './features/models/ModelsView';
import { QuantizeView } from './features/quantize/QuantizeView';
import { RunsView } from './features/runs/RunsView';
import { TrainView } from './features/train/TrainView';
import { useNav, VIEW_LABELS, type View } from './stores/nav';

const VIEW_COMPONENTS: Record<View, () => React.JSX.Element> = {
  models: ModelsView,
  quantize: QuantizeView,
  runs: RunsView,
  layers: LayerErrorView,
  train: TrainView,
  compare: CompareView,
  export: ExportView,
};

export function App() {
  const view = useNav((s) => s.view);
  const Current = VIEW_COMPONENTS[view];
  useEffect(() => {
    document.title = `${VIEW_LABELS[view]} · LoftQ Studio`;
    document.getElementById('main')?.scrollTo?.(0, 0);
  }, [view]);
  return (
    <div className="app">
      <a className="skip-link" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <aside className="sidebar">
        <div className="brand">
          LoftQ Studio
          <small>LoRA-aware quantization</small>
        </div>
        <Nav />
        <JobTray />
        <ConnectionBadge />
      </aside>
      <main className="main" id="main" tabIndex={-1}>
        <ConnectionBanner />
        <Current />
      </main>
    </div>
  );
}
