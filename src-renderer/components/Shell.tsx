// The app shell's sidebar: navigation, the job tray, and the connection status.
import { useEffect, useState } from 'react';
import type { JobInfo } from '../../src-main/api/contract';
import { basename, formatBytes } from '../lib/format';
import { useConnection } from '../stores/connection';
import { isLive, useJobs } from '../stores/jobs';
import { formatHash, useNav, VIEW_LABELS, VIEWS, type View } from '../stores/nav';
import { errorMessage } from '../transport/types';
import { api } from '../stores/api';
import { ProgressBar, StatusBadge } from './common';

export function Nav({ views = VIEWS }: { views?: readonly View[] }) {
  const view = useNav((s) => s.view);
  const run = useNav((s) => s.run);
  const go = useNav((s) => s.go);
  return (
    <nav className="nav" aria-label="Views">
      {views.map((v) => (
        <a
          key={v}
          href={formatHash(v, run)}
          aria-current={v === view ? 'page' : undefined}
          onClick={(e) => {
            if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
            e.preventDefault();
            go(v);
          }}
        >
          {VIEW_LABELS[v]}
        </a>
      ))}
    </nav>
  );
}

function JobCard({ job }: { job: JobInfo }) {
  const cancel = useJobs((s) => s.cancel);
  const dismiss = useJobs((s) => s.dismiss);
  const [error, setError] = useState<string | null>(null);
  const live = isLive(job);
  return (
    <div className="job" aria-label={`${job.kind} job ${basename(job.target)}`}>
      <div className="title">
        <strong className="grow">{job.kind}</strong>
        <StatusBadge status={job.state} />
      </div>
      <div className="ellipsis mono" title={job.target}>
        {basename(job.target)}
      </div>
      {live && <ProgressBar value={job.progress} label={`${job.kind} ${basename(job.target)} progress`} />}
      <div className="label" title={job.error ?? job.label}>
        {job.state === 'failed' ? job.error ?? job.label : live ? `${Math.round(job.progress * 100)}% · ${job.label}` : `${job.label}${job.finished ? ` at ${new Date(job.finished).toLocaleTimeString()}` : ''}`}
      </div>
      {error && <div className="note error small">{error}</div>}
      <div className="row small-buttons">
        {live ? (
          <button
            type="button"
            className="danger"
            onClick={() => {
              setError(null);
              cancel(job.id).catch((e) => setError(errorMessage(e)));
            }}
          >
            Cancel
          </button>
        ) : (
          <button type="button" onClick={() => dismiss(job.id)} aria-label={`Dismiss ${job.kind} job ${basename(job.target)}`}>
            Dismiss
          </button>
        )}
      </div>
    </div>
  );
}

export function JobTray() {
  const jobs = useJobs((s) => s.jobs);
  const order = useJobs((s) => s.order);
  const dismissed = useJobs((s) => s.dismissed);
  const shown = order
    .map((id) => jobs[id])
    .filter((j) => j && (isLive(j) || !dismissed[j.id]))
    .sort((a, b) => Number(isLive(b)) - Number(isLive(a)))
    .slice(0, 4);
  const running = shown.filter(isLive).length;
  return (
    <section className="tray" aria-label="Jobs">
      <h2>Jobs{running > 0 ? ` · ${running} running` : ''}</h2>
      {shown.length === 0 ? <div className="muted small">No jobs.</div> : shown.map((j) => <JobCard key={j.id} job={j} />)}
    </section>
  );
}

export function ConnectionBadge() {
  const status = useConnection((s) => s.status);
  const transport = useConnection((s) => s.transport);
  const info = useConnection((s) => s.info);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (status.state !== 'closed' || !status.retryAt) return;
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [status.state, status.retryAt]);
  const via = transport === 'ipc' ? 'app' : 'WebSocket';
  let text: string;
  const device = status.state === 'open' && info ? info.device : null;
  if (status.state === 'open') text = `Connected (${via})${info ? ` · v${info.version}` : ''}`;
  else if (status.state === 'connecting') text = status.attempt > 0 ? `Reconnecting (attempt ${status.attempt + 1})…` : 'Connecting…';
  else if (status.retryAt) text = `Disconnected: ${status.error ?? 'no connection'}. Retrying in ${Math.max(0, Math.ceil((status.retryAt - now) / 1000))} s.`;
  else text = `Disconnected: ${status.error ?? 'no connection'}`;
  return (
    <div className="conn" role="status" aria-live="polite">
      <span className={`dot ${status.state}`} aria-hidden="true" />
      <span className="text">{text}</span>
      {device && (
        <span className="device-badge small" title={device.cuda.available ? `Jobs run on ${device.name} (${device.cores} multiprocessors)` : `Jobs run on the CPU: ${device.cuda.reason}`}>
          {device.kind === 'cuda' ? `GPU: ${device.name}, ${formatBytes(device.memory_bytes)}` : `${device.name}, no GPU`}
        </span>
      )}
      {status.state === 'closed' && status.retryAt && (
        <button type="button" className="small" onClick={() => api().reconnect()}>
          Retry now
        </button>
      )}
    </div>
  );
}
