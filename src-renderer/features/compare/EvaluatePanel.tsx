// Evaluate from the app: perplexity of the chosen runs on one dataset (the engine's `loftq
// eval`: full precision when the original model is still there, Q alone, Q + adapter), with
// the sliding window named; the results land in each run's metrics and so in Compare.
import { useMemo, useState } from 'react';
import type { DeviceChoice, JobInfo, RunSummary } from '../../../src-main/api/contract';
import { ErrorNote, ProgressBar, StatusBadge, TextField } from '../../components/common';
import { DeviceFields, runsOnGpu, useGpuName, type GpuPrecision } from '../../components/DeviceFields';
import { basename } from '../../lib/format';
import { api } from '../../stores/api';
import { useConnection } from '../../stores/connection';
import { isLive, noteJob, useJobs } from '../../stores/jobs';
import { errorMessage } from '../../transport/types';

/** A window or stride as typed: blank is the engine's default, else a whole number ≥ min. */
function optionalInt(text: string, min: number): { value?: number; error?: string } {
  if (text.trim() === '') return {};
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < min) return { error: `a whole number ≥ ${min}, or empty for the model's default` };
  return { value: Number(text) };
}

export function EvaluatePanel(props: { runs: RunSummary[] }) {
  const info = useConnection((s) => s.info);
  const online = useConnection((s) => s.status.state === 'open');
  const [data, setData] = useState('');
  const [seqLen, setSeqLen] = useState('');
  const [stride, setStride] = useState('');
  const [device, setDevice] = useState<DeviceChoice>('auto');
  const [precision, setPrecision] = useState<GpuPrecision>('bf16');
  const [error, setError] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const order = useJobs((s) => s.order);
  const allJobs = useJobs((s) => s.jobs);
  // The newest evaluation of each chosen run (order is newest first).
  const latest = useMemo(() => {
    const targets = new Set(props.runs.map((r) => r.dir));
    const byRun = new Map<string, JobInfo>();
    for (const id of order) {
      const j = allJobs[id];
      if (j.kind === 'eval' && targets.has(j.target) && !byRun.has(j.target)) byRun.set(j.target, j);
    }
    return [...byRun.values()];
  }, [order, allJobs, props.runs]);
  const done = props.runs.filter((r) => r.record.status === 'done');
  const window = optionalInt(seqLen, 2);
  const step = optionalInt(stride, 1);
  const pick = api().pickFolder;
  const gpu = useGpuName();
  // The precision matters only where the evaluation will run on the GPU.
  const onGpu = runsOnGpu(device, gpu);

  const start = async () => {
    setSubmitting(true);
    setError(null);
    try {
      for (const r of done) {
        noteJob(await api().startEval({ target: r.dir, data: data.trim(), seqLen: window.value, stride: step.value, device, ...(onGpu ? { precision } : {}) }));
      }
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setSubmitting(false);
    }
  };

  return (
    <section className="panel" aria-label="Evaluate">
      <h2>Evaluate perplexity</h2>
      <p className="small muted">
        Full precision (when the original model is still there), Q alone and Q + adapter of each chosen run, on one text, with the standard sliding window: every token after the first
        scored once, with up to window − 1 tokens of context.
      </p>
      <div className="form-grid" style={{ maxWidth: 860 }}>
        <div className="span-2 row" style={{ alignItems: 'flex-end' }}>
          <TextField className="grow" label="Evaluation data" value={data} mono hint=".txt, .jsonl or .parquet" onChange={setData} />
          {pick && (
            <button type="button" onClick={() => void pick('data').then((chosen) => chosen && setData(chosen))}>
              Choose…
            </button>
          )}
          {info?.demoData && (
            <button type="button" onClick={() => setData(info.demoData!.eval)}>
              The demo’s held-out text
            </button>
          )}
        </div>
        <TextField label="Window (tokens)" value={seqLen} error={window.error} placeholder="the model's" hint="empty: the model's own context, at most 1024" onChange={setSeqLen} />
        <TextField label="Stride (tokens)" value={stride} error={step.error} placeholder="half the window" onChange={setStride} />
        <DeviceFields device={device} precision={precision} onDevice={setDevice} onPrecision={setPrecision} />
      </div>
      <div className="row" style={{ marginTop: 12 }}>
        <button type="button" className="primary" disabled={!online || submitting || done.length === 0 || data.trim() === '' || !!window.error || !!step.error} onClick={() => void start()}>
          {submitting ? 'Starting…' : `Evaluate ${done.length} run${done.length === 1 ? '' : 's'}`}
        </button>
      </div>
      <div style={{ marginTop: 10 }}>
        <ErrorNote error={error} />
      </div>
      {latest.length > 0 && (
        <ul className="plain" aria-label="Evaluations" style={{ marginTop: 8 }}>
          {latest.map((j) => (
            <li key={j.id} style={{ marginBottom: 6 }}>
              <span className="mono">{basename(j.target)}</span> <StatusBadge status={j.state} /> <span className="small muted">{j.state === 'failed' ? j.error : isLive(j) ? j.label : ''}</span>
              {isLive(j) && <ProgressBar value={j.progress} label={`Evaluation of ${basename(j.target)}`} />}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
