// Models: open a model folder (a typed path in web mode) or the demo model; its facts and
// the target matrices.
import { useMemo } from 'react';
import { ErrorNote, Stat, TextField } from '../../components/common';
import { formatBytes, formatCount } from '../../lib/format';
import { gridAxes } from '../../lib/targets';
import { useConnection } from '../../stores/connection';
import { useModel } from '../../stores/model';
import { api } from '../../stores/api';
import { useNav } from '../../stores/nav';

export function ModelsView() {
  const { path, summary, loading, error, setPath, open, recent, forget } = useModel();
  const info = useConnection((s) => s.info);
  const online = useConnection((s) => s.status.state === 'open');
  const go = useNav((s) => s.go);
  const pick = api().pickFolder;
  const axes = useMemo(() => (summary ? gridAxes(summary.targets) : null), [summary]);

  return (
    <div className="view">
      <div className="view-header">
        <h1>Models</h1>
        <p>Open a local Hugging Face model folder (Llama, Mistral, Qwen2) to quantize it.</p>
      </div>
      <section className="panel" aria-label="Open a model">
        <div className="row" style={{ alignItems: 'flex-end' }}>
          <TextField
            className="grow"
            label="Model folder (on the machine running the engine)"
            value={path}
            onChange={setPath}
            placeholder="/path/to/model (config.json + *.safetensors)"
            hint="~ is your home folder"
            mono
            onEnter={() => void open(path)}
          />
          {pick && (
            <button
              type="button"
              disabled={loading}
              onClick={() =>
                void pick('model').then((chosen) => {
                  if (chosen) void open(chosen);
                })
              }
            >
              Browse…
            </button>
          )}
          <button type="button" className="primary" disabled={loading || !online} onClick={() => void open(path)}>
            {loading ? 'Opening…' : 'Open'}
          </button>
          <button
            type="button"
            disabled={loading || !online || !info?.demoModel}
            title={info?.demoModel ? info.demoModel : 'the server has no demo model'}
            onClick={() => info?.demoModel && void open(info.demoModel)}
          >
            Open demo model
          </button>
        </div>
        <div style={{ marginTop: 10 }}>
          <ErrorNote error={error} />
        </div>
        {recent.length > 0 && (
          <div aria-label="Recent models" role="group" style={{ marginTop: 10 }}>
            <div className="flabel">Recent</div>
            <ul className="plain">
              {recent.map((p) => (
                <li key={p} className="row" style={{ gap: 6 }}>
                  <button type="button" className="link mono wrap-any" disabled={loading || !online} onClick={() => void open(p)}>
                    {p}
                  </button>
                  <button type="button" className="small" aria-label={`Forget ${p}`} onClick={() => forget(p)}>
                    ×
                  </button>
                </li>
              ))}
            </ul>
          </div>
        )}
      </section>

      {summary && axes && (
        <>
          <section className="panel" aria-label="Model summary">
            <div className="row" style={{ marginBottom: 12 }}>
              <h2 className="grow mono ellipsis" title={summary.path}>
                {summary.path}
              </h2>
              <button type="button" className="primary" onClick={() => go('quantize')}>
                Quantize this model →
              </button>
            </div>
            <div className="stats">
              <Stat label="Architecture" value={summary.architecture} sub={`${summary.layers} layers · hidden ${summary.hidden_size}`} />
              <Stat label="Parameters" value={formatCount(summary.parameters)} sub={`${summary.parameters.toLocaleString()}`} />
              <Stat label="Dtype" value={summary.torch_dtype} sub={`${formatBytes(summary.weight_bytes)} in ${summary.weight_files} file(s)`} />
              <Stat
                label="Target matrices"
                value={summary.targets.length}
                sub={`${formatCount(summary.target_parameters)} params (${((100 * summary.target_parameters) / Math.max(1, summary.parameters)).toFixed(1)}%)`}
              />
              <Stat label="Attention" value={`${summary.heads} / ${summary.kv_heads}`} sub={`heads / kv heads · head dim ${summary.head_dim}`} />
              <Stat label="MLP" value={summary.intermediate_size} sub={`vocab ${summary.vocab_size}${summary.tie_word_embeddings ? ' · tied embeddings' : ''}`} />
            </div>
          </section>
          <section className="panel" aria-label="Target matrices">
            <h2>
              Target matrices <span className="muted small">({axes.modules.length} modules × {axes.layers.length} layers)</span>
            </h2>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Module path</th>
                    <th scope="col" className="num">
                      Layer
                    </th>
                    <th scope="col">Module</th>
                    <th scope="col" className="num">
                      Shape [out, in]
                    </th>
                    <th scope="col" className="num">
                      Parameters
                    </th>
                    <th scope="col">Dtype</th>
                  </tr>
                </thead>
                <tbody>
                  {summary.targets.map((t) => (
                    <tr key={t.name}>
                      <td className="mono">{t.name}</td>
                      <td className="num">{t.layer}</td>
                      <td>{t.module}</td>
                      <td className="num mono">
                        {t.shape[0]} × {t.shape[1]}
                      </td>
                      <td className="num">{(t.shape[0] * t.shape[1]).toLocaleString()}</td>
                      <td>{t.dtype}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
        </>
      )}
    </div>
  );
}
