// Fine-tune: a finished run's LoRA adapter trained on its quantized backbone (the engine's
// `loftq train`): data (the demo's texts one click away), the settings, then live loss,
// held-out perplexity, tokens/s and ETA, with cancel; a stopped training resumes with the
// settings it was started with (the form says which ones were changed).
import { useState } from 'react';
import type { DeviceChoice } from '../../../src-main/api/contract';
import { ErrorNote, Stat, TextField } from '../../components/common';
import { DeviceFields, runsOnGpu, useGpuName, type GpuPrecision } from '../../components/DeviceFields';
import { JobHeader } from '../../components/JobHeader';
import { StepChart } from '../../components/StepChart';
import { usePalette } from '../../components/theme';
import { basename, formatNum, formatSeconds } from '../../lib/format';
import { api } from '../../stores/api';
import { useConnection } from '../../stores/connection';
import { isLive, useJobs, type TrainPoint } from '../../stores/jobs';
import { useNav } from '../../stores/nav';
import { useRuns } from '../../stores/runs';
import { changedFields, DEFAULT_TRAIN_FORM, demoTrainForm, formOfTraining, parseTrainForm, TRAIN_FIELD_LABELS, useTrain, type TrainForm } from '../../stores/train';
import { RunPicker } from '../layer-error/LayerErrorView';

/** Seconds left at the rate of the points so far (null until two steps are in). */
export function etaSeconds(points: readonly TrainPoint[]): number | null {
  const steps = points.filter((p) => p.loss !== undefined);
  if (steps.length < 2) return null;
  const first = steps[0];
  const last = steps[steps.length - 1];
  const rate = (last.step - first.step) / ((last.at - first.at) / 1000);
  return rate > 0 ? (last.steps - last.step) / rate : null;
}

export function TrainView() {
  const runs = useRuns((s) => s.runs);
  const info = useConnection((s) => s.info);
  const online = useConnection((s) => s.status.state === 'open');
  const navRun = useNav((s) => s.run);
  const go = useNav((s) => s.go);
  const { forms, update, start, submitting, error } = useTrain();
  // Where it trains is not part of the settings a resume must keep.
  const [device, setDevice] = useState<DeviceChoice>('auto');
  const [precision, setPrecision] = useState<GpuPrecision>('bf16');
  const gpu = useGpuName();
  const onGpu = runsOnGpu(device, gpu);
  const palette = usePalette();

  const done = runs.filter((r) => r.record.status === 'done');
  const run = done.find((r) => r.dir === navRun) ?? done[0];
  const training = run?.record.training;
  const previous = training ? formOfTraining(training) : null;
  const base: TrainForm = previous ?? DEFAULT_TRAIN_FORM;
  const form = run ? (forms[run.dir] ?? base) : base;
  const parsed = parseTrainForm(form);
  const changed = previous ? changedFields(form, previous) : [];

  // The newest train job of this run, and its live points.
  const jobId = useJobs((s) => (run ? (s.order.find((id) => s.jobs[id].kind === 'train' && s.jobs[id].target === run.dir) ?? null) : null));
  const job = useJobs((s) => (jobId ? s.jobs[jobId] : undefined));
  const points = useJobs((s) => (jobId ? s.progress[jobId]?.train : undefined)) ?? [];
  const live = job !== undefined && isLive(job);

  const pick = api().pickFolder;
  const set = (patch: Partial<TrainForm>) => run && update(run.dir, base, patch);
  const lossData = points.filter((p) => p.loss !== undefined).map((p) => ({ step: p.step, loss: p.loss as number }));
  const pplData = points.filter((p) => p.eval_ppl !== undefined).map((p) => ({ step: p.step, ppl: p.eval_ppl as number }));
  const last = [...points].reverse().find((p) => p.loss !== undefined);
  const lastPpl = [...points].reverse().find((p) => p.eval_ppl !== undefined);
  const eta = live ? etaSeconds(points) : null;
  const resumable = training !== undefined && training.status !== 'done' && training.step < training.steps;

  const field = (k: keyof TrainForm, extra: { hint?: string; mono?: boolean; className?: string } = {}) => (
    <TextField label={TRAIN_FIELD_LABELS[k]} value={form[k]} error={parsed.errors[k]} mono={extra.mono} hint={extra.hint} className={extra.className} onChange={(v) => set({ [k]: v })} />
  );
  const chooseFile = (k: 'data' | 'evalData') =>
    pick && (
      <button type="button" onClick={() => void pick('data').then((chosen) => chosen && set({ [k]: chosen }))}>
        Choose…
      </button>
    );

  return (
    <div className="view">
      <div className="view-header">
        <h1>Fine-tune</h1>
        <p>Train a run’s LoRA adapter on its quantized backbone; the trained adapter is what Export writes.</p>
      </div>
      {!run ? (
        <div className="panel empty">No finished runs to fine-tune yet: quantize one first.</div>
      ) : (
        <form
          className="panel"
          aria-label="Fine-tune options"
          onSubmit={(e) => {
            e.preventDefault();
            if (parsed.request) void start({ run: run.dir, ...parsed.request, device, ...(onGpu ? { precision } : {}) });
          }}
        >
          <div className="form-grid" style={{ maxWidth: 860 }}>
            <div className="span-2">
              <RunPicker runs={done} value={run.dir} onChange={(dir) => go('train', dir)} />
            </div>
            <div className="span-2 row" style={{ alignItems: 'flex-end' }}>
              {field('data', { mono: true, className: 'grow', hint: '.txt (one text), .jsonl or .parquet (the text field)' })}
              {chooseFile('data')}
              {info?.demoData && (
                <button type="button" onClick={() => set(demoTrainForm(info.demoData!))}>
                  Use the demo texts
                </button>
              )}
            </div>
            <div className="span-2 row" style={{ alignItems: 'flex-end' }}>
              {field('evalData', { mono: true, className: 'grow', hint: 'optional: without it the last rows of the training data are held out' })}
              {chooseFile('evalData')}
            </div>
            {field('steps')}
            {field('lr', { hint: 'peak, after warm-up; cosine decay to the end' })}
            {field('batch', { hint: 'sequences per step' })}
            {field('seqLen', { hint: 'tokens per sequence' })}
            {field('warmup')}
            {field('evalEvery', { hint: 'steps between held-out perplexities (0: only at the end)' })}
            <DeviceFields device={device} precision={precision} onDevice={setDevice} onPrecision={setPrecision} deviceHint="a stopped run may resume on another device" />
          </div>
          {training && (
            <div className="note" role="note" style={{ marginTop: 12 }}>
              {training.status === 'done' ? 'This run was fine-tuned' : `This run’s fine-tuning stopped at step ${training.step} of ${training.steps}`} with the settings shown
              {training.last_loss != null ? ` (last loss ${formatNum(training.last_loss)})` : ''}. The engine continues a run only with the settings it was started with.
              {changed.length > 0 && <> Changed: {changed.map((k) => `${TRAIN_FIELD_LABELS[k]} (was ${previous![k] || 'none'})`).join(', ')} — it will refuse; quantize a new run to train with other settings.</>}
            </div>
          )}
          <div className="row" style={{ marginTop: 12 }}>
            <button type="submit" className="primary" disabled={!online || submitting || !parsed.request || live}>
              {submitting ? 'Starting…' : resumable && changed.length === 0 ? `Resume (step ${training!.step} of ${training!.steps})` : 'Start fine-tuning'}
            </button>
          </div>
          <div style={{ marginTop: 10 }}>
            <ErrorNote error={error} />
          </div>
        </form>
      )}
      {job && (
        <section className="panel" aria-label="Fine-tune job" aria-live="polite">
          <JobHeader job={job} title={`Fine-tuning ${basename(job.target)}`} stopLabel="Stop" progressLabel="Fine-tune progress" />
          <div className="stats" style={{ marginTop: 8 }}>
            <Stat label="Step" value={last ? `${last.step} / ${last.steps}` : '–'} />
            <Stat label="Training loss" value={last?.loss !== undefined ? formatNum(last.loss) : '–'} />
            <Stat label="Held-out perplexity" value={lastPpl?.eval_ppl !== undefined ? formatNum(lastPpl.eval_ppl) : '–'} />
            <Stat label="Tokens / s" value={last?.tokens_per_s !== undefined ? formatNum(last.tokens_per_s, 3) : '–'} />
            <Stat label="Time left" value={eta !== null ? formatSeconds(eta) : '–'} />
            {last?.gpu_bytes !== undefined && <Stat label="GPU memory" value={`${(last.gpu_bytes / 2 ** 30).toFixed(2)} GiB`} />}
            {last?.where && <Stat label="Running on" value={last.where} />}
          </div>
          {job.state === 'cancelled' && <p className="muted">Stopped after a checkpoint; start it again with the same settings to resume.</p>}
          {lossData.length > 0 && (
            <figure aria-label="Training loss by step" style={{ margin: '12px 0 0' }}>
              <figcaption className="small muted">Training loss (mean cross-entropy per token, nats) by step</figcaption>
              <StepChart data={lossData} series={[{ key: 'loss', color: palette.series[0], run: { name: 'training loss' } }]} log={false} palette={palette} dots={false} yLabel="loss (nats / token)" />
            </figure>
          )}
          {pplData.length > 0 && (
            <figure aria-label="Held-out perplexity by step" style={{ margin: '12px 0 0' }}>
              <figcaption className="small muted">
                Held-out perplexity (Q + adapter) by step: exp(mean loss) over held-out rows of {form.seqLen} tokens, each on its own (Evaluate’s sliding window reads lower)
              </figcaption>
              <StepChart data={pplData} series={[{ key: 'ppl', color: palette.series[1], run: { name: 'held-out perplexity' } }]} log={false} palette={palette} dots yLabel="perplexity" />
            </figure>
          )}
        </section>
      )}
    </div>
  );
}
