// Live progress of a quantize job: overall bar, the matrix being worked on (with its
// alternating step and error), and the init error of finished matrices as a heatmap.
import { useEffect, useMemo, useRef, useState } from 'react';
import { ProgressBar, StatusBadge } from '../../components/common';
import { Heatmap, type HeatCell } from '../../components/Heatmap';
import { basename, formatNum } from '../../lib/format';
import { parseModulePath } from '../../../src-main/engine/rules/modules';
import { isLive, useJobs } from '../../stores/jobs';
import { useNav } from '../../stores/nav';
import { errorMessage } from '../../transport/types';

export function layerCells(layers: readonly { name: string; err_init: number }[]): HeatCell[] {
  const cells: HeatCell[] = [];
  for (const l of layers) {
    const p = parseModulePath(l.name);
    if (p) cells.push({ name: l.name, layer: p.layer, module: p.module, value: l.err_init });
  }
  return cells;
}

export function JobProgress({ jobId, scrollOnStart = false }: { jobId: string; scrollOnStart?: boolean }) {
  const job = useJobs((s) => s.jobs[jobId]);
  const progress = useJobs((s) => s.progress[jobId]);
  const cancel = useJobs((s) => s.cancel);
  const go = useNav((s) => s.go);
  const [error, setError] = useState<string | null>(null);
  const cells = useMemo(() => layerCells(progress?.layers ?? []), [progress?.layers]);
  const panel = useRef<HTMLElement>(null);
  // A new run: bring its progress into view (the form is above it).
  const started = job?.started;
  useEffect(() => {
    const fresh = started !== undefined && Date.now() - Date.parse(started) < 5000;
    if (scrollOnStart && fresh) panel.current?.scrollIntoView?.({ behavior: 'smooth', block: 'start' });
  }, [jobId, scrollOnStart, started]);
  if (!job) return null;
  const live = isLive(job);
  // The engine's counts (right after a reload too, before any event); the events seen here otherwise.
  const done = Math.max(job.done ?? 0, progress?.layers.length ?? 0);
  const total = job.total ?? progress?.total ?? 0;
  const cur = progress?.current;
  const last = progress?.layers[progress.layers.length - 1];

  return (
    <section className="panel" aria-label="Run progress" ref={panel}>
      <div className="row" style={{ marginBottom: 8 }}>
        <h2 className="grow">
          {basename(job.target)} <StatusBadge status={job.state} />
        </h2>
        {live ? (
          <button type="button" className="danger" onClick={() => cancel(job.id).catch((e) => setError(errorMessage(e)))}>
            Cancel run
          </button>
        ) : !live ? (
          <button type="button" className="primary" onClick={() => go('layers', job.target)}>
            Open layer error →
          </button>
        ) : null}
      </div>
      {error && <div className="note error">{error}</div>}
      {live && <ProgressBar value={job.progress} label="Quantize progress" />}
      <p className="small" aria-live="polite">
        {job.state === 'failed' ? (
          <span style={{ color: 'var(--danger)' }}>{job.error ?? job.label}</span>
        ) : (
          <>
            {total > 0 ? `${done} of ${total} matrices done` : job.label}
            {live && cur && (
              <>
                {' · '}
                <span className="mono">{cur.name}</span> [{cur.shape[0]}×{cur.shape[1]}] at {cur.bits} bits
                {cur.step !== undefined && ` · step ${cur.step}/${cur.iters} err ${formatNum(cur.err)}`}
              </>
            )}
            {live && progress?.phase && !cur && ` · ${progress.phase}`}
            {last && ` · last: err_q ${formatNum(last.err_q)} → err_init ${formatNum(last.err_init)}`}
          </>
        )}
      </p>
      {cells.length > 0 && <Heatmap cells={cells} valueLabel="err_init" label="Init error of finished matrices" />}
    </section>
  );
}
