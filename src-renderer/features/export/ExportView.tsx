// Export: a finished run's adapter in PEFT format (with its backbone), as llama.cpp's GGUF
// (base + adapter), or a merged model (W' = Q + s·B·A), into a folder the user names; the
// files it wrote and what the user should know about them.
import { ErrorNote, Segmented, TextField } from '../../components/common';
import { JobHeader } from '../../components/JobHeader';
import { basename } from '../../lib/format';
import { api } from '../../stores/api';
import { useConnection } from '../../stores/connection';
import { suggestExportDir, useExport } from '../../stores/export';
import { isLive, useJobs } from '../../stores/jobs';
import { useNav } from '../../stores/nav';
import { useRuns } from '../../stores/runs';
import { RunPicker } from '../layer-error/LayerErrorView';

interface ExportResult {
  out: string;
  format: string;
  files: string[];
  notes?: string[];
}

/** What the GGUF base stores for a run's quantizer. */
function ggufBaseNote(config: Record<string, unknown> | undefined): string {
  if (config?.quant === 'ggml') return 'the run’s q4_0/q8_0 blocks as they are, so llama.cpp runs exactly the Q the adapter was fitted to';
  return 'Q as F16 (llama.cpp has no NF or uniform type: each weight rounded to fp16, the adapter fitted to Q itself; quantize with llama.cpp q4_0/q8_0 for an exact base)';
}

function isExportResult(x: unknown): x is ExportResult {
  return typeof x === 'object' && x !== null && Array.isArray((x as ExportResult).files) && typeof (x as ExportResult).out === 'string';
}

export function ExportView() {
  const runs = useRuns((s) => s.runs);
  const info = useConnection((s) => s.info);
  const online = useConnection((s) => s.status.state === 'open');
  const navRun = useNav((s) => s.run);
  const go = useNav((s) => s.go);
  const { format, out, outTouched, force, jobId, submitting, error, update, start } = useExport();
  const job = useJobs((s) => (jobId ? s.jobs[jobId] : undefined));

  const pick = api().pickFolder;
  const done = runs.filter((r) => r.record.status === 'done');
  const run = done.find((r) => r.dir === navRun) ?? done[0];
  const suggested = run && info ? suggestExportDir(info.runsDir, run.name, format) : '';
  // In the app the folder comes from the dialog (main refuses any other), so nothing is suggested.
  const folder = outTouched ? out : pick ? '' : suggested;

  const result = job?.state === 'done' && isExportResult(job.result) ? job.result : null;

  return (
    <div className="view">
      <div className="view-header">
        <h1>Export</h1>
        <p>Write a finished run as a PEFT adapter (plus its backbone), as GGUF for llama.cpp, or as a merged model.</p>
      </div>
      {done.length === 0 ? (
        <div className="panel empty">No finished runs to export yet.</div>
      ) : (
        <form
          className="panel"
          aria-label="Export options"
          onSubmit={(e) => {
            e.preventDefault();
            if (run && folder.trim()) void start({ run: run.dir, format, out: folder.trim(), force });
          }}
        >
          <div className="form-grid" style={{ maxWidth: 760 }}>
            <div className="span-2">
              <RunPicker runs={done} value={run?.dir ?? null} onChange={(dir) => go('export', dir)} />
            </div>
            <div className="field span-2">
              <span className="flabel">
                Format
              </span>
              <Segmented
                label="Format"
                value={format}
                options={[
                  { value: 'peft', label: 'PEFT adapter + backbone' },
                  { value: 'gguf', label: 'GGUF for llama.cpp' },
                  { value: 'merged', label: 'Merged model' },
                ]}
                onChange={(f) => update({ format: f })}
              />
              <span className="hint">
                {format === 'peft' && 'adapter_config.json + adapter_model.safetensors at the top (PeftModel.from_pretrained), the dequantized backbone in backbone/.'}
                {format === 'gguf' && (
                  <>
                    model.gguf with {ggufBaseNote(run?.record.config)}; adapter.gguf with the LoRA adapter. Run:{' '}
                    <span className="mono">llama-cli -m model.gguf --lora adapter.gguf</span>
                  </>
                )}
                {format === 'merged' && 'A plain model folder with W′ = Q + s·B·A in the model’s dtype.'}
              </span>
            </div>
            <div className="span-2 row" style={{ alignItems: 'flex-end' }}>
              <TextField
                className="grow"
                label="Output folder (on the machine running the engine)"
                value={folder}
                mono
                hint={pick ? 'choose it with the dialog: the app exports only to a folder chosen there' : outTouched ? undefined : 'suggested; type to change'}
                readOnly={Boolean(pick)}
                onChange={(v) => update({ out: v, outTouched: true })}
              />
              {pick && (
                <button
                  type="button"
                  onClick={() =>
                    void pick('export').then((chosen) => {
                      if (chosen) update({ out: chosen, outTouched: true });
                    })
                  }
                >
                  Choose…
                </button>
              )}
            </div>
            <label className="check span-2">
              <input type="checkbox" checked={force} onChange={(e) => update({ force: e.target.checked })} /> Replace the folder if it holds an earlier export
            </label>
          </div>
          <div className="row" style={{ marginTop: 12 }}>
            <button type="submit" className="primary" disabled={!online || submitting || !run || !folder.trim() || (job !== undefined && isLive(job))}>
              {submitting ? 'Starting…' : 'Export'}
            </button>
          </div>
          <div style={{ marginTop: 10 }}>
            <ErrorNote error={error} />
          </div>
        </form>
      )}
      {job && (
        <section className="panel" aria-label="Export job" aria-live="polite">
          <JobHeader job={job} title={`Export of ${basename(job.target)}`} stopLabel="Cancel" progressLabel="Export progress" />
          {!isLive(job) && job.state !== 'failed' && !result && <p className="muted">{job.label}</p>}
          {result && (
            <>
              <p>
                Wrote {result.files.length} files ({result.format}) to <span className="mono">{result.out}</span>:
              </p>
              <ul className="mono small" style={{ margin: 0, paddingLeft: 20 }}>
                {result.files.map((f) => (
                  <li key={f}>{f}</li>
                ))}
              </ul>
              {result.notes?.map((n) => (
                <div key={n} className="note" role="note">
                  {n}
                </div>
              ))}
            </>
          )}
        </section>
      )}
    </div>
  );
}
