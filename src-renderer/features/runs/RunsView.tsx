// Runs: every run in the runs folder (CLI runs too) with status and key numbers; rename
// inline, delete after confirmation, open one in Layer error.
import { useEffect, useRef, useState } from 'react';
import type { RunSummary } from '../../../src-main/api/contract';
import { ErrorNote, StatusBadge } from '../../components/common';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { formatDate, formatNum, formatSeconds } from '../../lib/format';
import { api } from '../../stores/api';
import { useConnection } from '../../stores/connection';
import { useCompare } from '../../stores/compare';
import { useNav } from '../../stores/nav';
import { RUN_NAME } from '../../stores/quantize';
import { configValue, summaryNumber, useRuns } from '../../stores/runs';
import { errorMessage } from '../../transport/types';

function leaf(name: string): string {
  return name.split('/').pop() ?? name;
}

export function bitsText(run: RunSummary): string {
  const bits = configValue<number>(run, 'bits');
  const map = configValue<string | null>(run, 'bits_map');
  return `${bits ?? '?'}${map ? ` + map` : ''}`;
}

function RenameCell(props: { run: RunSummary; onDone: () => void }) {
  const rename = useRuns((s) => s.rename);
  const nav = useNav();
  const [draft, setDraft] = useState(leaf(props.run.name));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);
  const invalid = !RUN_NAME.test(draft);
  const save = async () => {
    if (draft === leaf(props.run.name)) return props.onDone();
    if (invalid) return;
    setBusy(true);
    try {
      const renamed = await rename(props.run.dir, draft);
      if (nav.run === props.run.dir) nav.go(nav.view, renamed.dir);
      props.onDone();
    } catch (e) {
      setError(errorMessage(e));
      setBusy(false);
    }
  };
  return (
    <div className="row" style={{ flexWrap: 'nowrap' }}>
      <input
        ref={input}
        type="text"
        className="mono"
        aria-label={`New name for ${props.run.name}`}
        aria-invalid={invalid || error ? true : undefined}
        value={draft}
        disabled={busy}
        onChange={(e) => setDraft(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') void save();
          if (e.key === 'Escape') props.onDone();
        }}
      />
      <button type="button" className="small primary" disabled={busy || invalid} onClick={() => void save()}>
        Save
      </button>
      <button type="button" className="small" onClick={props.onDone}>
        Cancel
      </button>
      {error && (
        <span className="small" role="alert" style={{ color: 'var(--danger)' }}>
          {error}
        </span>
      )}
    </div>
  );
}

/** A run's fine-tuning at a glance: steps done of total, the last loss and held-out perplexity. */
export function trainingText(r: RunSummary): string {
  const t = r.record.training;
  if (!t) return '–';
  const parts = [`${t.step}/${t.steps}${t.status === 'done' ? '' : ` ${t.status}`}`];
  if (t.last_loss != null) parts.push(`loss ${formatNum(t.last_loss, 3)}`);
  if (t.best_eval_ppl != null) parts.push(`best ppl ${formatNum(t.best_eval_ppl, 4)}`);
  else if (t.last_eval_ppl != null) parts.push(`ppl ${formatNum(t.last_eval_ppl, 4)}`);
  return parts.join(' · ');
}

export function RunsView() {
  const { runs, loading, error, refresh, remove } = useRuns();
  const info = useConnection((s) => s.info);
  const online = useConnection((s) => s.status.state === 'open');
  // Only the app can open the OS file manager; in a browser the path is shown instead.
  const reveal = api().revealPath;
  const nav = useNav();
  const [editing, setEditing] = useState<string | null>(null);
  // Runs ticked for Compare (those still listed).
  const [pickedRaw, setPicked] = useState<string[]>([]);
  const picked = pickedRaw.filter((d) => runs.some((r) => r.dir === d));
  const setCompare = useCompare((s) => s.set);
  const compareSelected = () => {
    setCompare(picked);
    nav.go('compare');
  };
  const [deleting, setDeleting] = useState<RunSummary | null>(null);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);

  const confirmDelete = async () => {
    if (!deleting) return;
    setBusy(true);
    setActionError(null);
    try {
      await remove(deleting.dir);
      if (nav.run === deleting.dir) nav.go(nav.view, null);
    } catch (e) {
      setActionError(errorMessage(e));
    }
    setBusy(false);
    setDeleting(null);
  };

  return (
    <div className="view">
      <div className="view-header">
        <h1>Runs</h1>
        <p className="grow">
          Every run in <span className="mono">{info?.runsDir ?? 'the runs folder'}</span>, including those made with the CLI.
        </p>
        <button type="button" className="primary" disabled={picked.length < 2} onClick={() => compareSelected()}>
          Compare {picked.length > 0 ? picked.length : ''} selected
        </button>
        <button type="button" disabled={loading || !online} onClick={() => void refresh()}>
          {loading ? 'Refreshing…' : 'Refresh'}
        </button>
      </div>
      <ErrorNote error={error ?? actionError} />
      {runs.length === 0 ? (
        <div className="panel empty">{loading ? 'Loading…' : 'No runs yet. Start one in Quantize.'}</div>
      ) : (
        <div className="table-wrap" style={{ maxHeight: 'none' }}>
          <table>
            <thead>
              <tr>
                <th scope="col">
                  <span className="sr-only">Pick for Compare</span>
                </th>
                <th scope="col">Run</th>
                <th scope="col">Status</th>
                <th scope="col">Method</th>
                <th scope="col" className="num">
                  Bits
                </th>
                <th scope="col" className="num">
                  Rank
                </th>
                <th scope="col" className="num">
                  Avg bits
                </th>
                <th scope="col" className="num">
                  Mean err_q
                </th>
                <th scope="col" className="num">
                  Mean err_init
                </th>
                <th scope="col" className="num wide-only">
                  Time
                </th>
                <th scope="col" className="wide-only">Device</th>
                <th scope="col">Fine-tuning</th>
                <th scope="col" className="wide-only">Created</th>
                <th scope="col" className="sticky-end">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.dir} className={r.dir === nav.run ? 'selected' : undefined}>
                  <td>
                    <input type="checkbox" aria-label={`Pick ${r.name} for Compare`} checked={picked.includes(r.dir)} onChange={(e) => setPicked(e.target.checked ? [...picked, r.dir] : picked.filter((d) => d !== r.dir))} />
                  </td>
                  <td className="name-cell">
                    {editing === r.dir ? (
                      <RenameCell run={r} onDone={() => setEditing(null)} />
                    ) : (
                      <button type="button" className="link mono wrap-any" title={`${r.dir}\nOpen in Layer error`} onClick={() => nav.go('layers', r.dir)}>
                        {r.name}
                      </button>
                    )}
                    {r.record.error && (
                      <div className="small muted ellipsis" title={r.record.error}>
                        {r.record.error}
                      </div>
                    )}
                  </td>
                  <td>
                    <StatusBadge status={r.record.status} />
                    {summaryNumber(r, 'matrices_planned') !== undefined && (
                      <div className="small muted">
                        means of {summaryNumber(r, 'matrices')} of {summaryNumber(r, 'matrices_planned')} matrices
                      </div>
                    )}
                  </td>
                  <td>{String(configValue(r, 'method') ?? '–')}</td>
                  <td className="num">{bitsText(r)}</td>
                  <td className="num">{String(configValue(r, 'rank') ?? '–')}</td>
                  <td className="num">{formatNum(summaryNumber(r, 'avg_bits'))}</td>
                  <td className="num">{formatNum(summaryNumber(r, 'mean_err_q'))}</td>
                  <td className="num">{formatNum(summaryNumber(r, 'mean_err_init'))}</td>
                  <td className="num wide-only">{formatSeconds(r.record.timings?.total_s)}</td>
                  <td className="small wide-only" title={deviceReason(r)}>
                    {deviceName(r)}
                  </td>
                  <td className="small">{trainingText(r)}</td>
                  <td className="small wide-only">{formatDate(r.record.created)}</td>
                  <td className="sticky-end">
                    <div className="row small-buttons" style={{ flexWrap: 'nowrap' }}>
                      <button type="button" onClick={() => nav.go('layers', r.dir)} aria-label={`Open ${r.name} in Layer error`}>
                        Open
                      </button>
                      {r.record.status === 'done' && (
                        <button type="button" onClick={() => nav.go('train', r.dir)} aria-label={`Fine-tune ${r.name}`}>
                          Fine-tune
                        </button>
                      )}
                      {reveal && (
                        <button type="button" onClick={() => void reveal(r.dir)} aria-label={`Show ${r.name} in the file manager`}>
                          Reveal
                        </button>
                      )}
                      <button type="button" disabled={!online} onClick={() => setEditing(r.dir)} aria-label={`Rename ${r.name}`}>
                        Rename
                      </button>
                      <button type="button" className="danger" disabled={!online} onClick={() => setDeleting(r)} aria-label={`Delete ${r.name}`}>
                        Delete
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {deleting && (
        <ConfirmDialog title={`Delete ${deleting.name}?`} confirmLabel={busy ? 'Deleting…' : 'Delete run'} danger busy={busy} onConfirm={() => void confirmDelete()} onCancel={() => setDeleting(null)}>
          <p style={{ margin: 0 }}>
            This removes the folder <span className="mono">{deleting.dir}</span> with its quantized weights, adapters and metrics. It cannot be undone.
          </p>
        </ConfirmDialog>
      )}
    </div>
  );
}

/** The device a run was computed on (runs made before it was recorded say so). */
function deviceName(r: RunSummary): string {
  const d = r.record.device;
  return d && typeof d.name === 'string' ? d.name : '–';
}

function deviceReason(r: RunSummary): string | undefined {
  const d = r.record.device;
  return d && typeof d.reason === 'string' ? d.reason : undefined;
}
