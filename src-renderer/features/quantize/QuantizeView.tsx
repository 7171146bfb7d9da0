// Quantize: method, bits (global, the paper's first-k preset, the per-matrix grid), LoRA and
// quantizer options; a live estimate of average bits and memory; Run with live progress.
import { useMemo } from 'react';
import type { QuantizeRequest } from '../../../src-main/api/contract';
import { ErrorNote, Segmented, SelectField, Stat, TextField } from '../../components/common';
import { BIT_CHOICES, buildBitsMap, effectiveBits, PRESET_BITS } from '../../lib/bits-map';
import { estimate } from '../../lib/estimate';
import { formatBytes, formatCount } from '../../lib/format';
import { loraScaling } from '../../../src-main/engine/rules/lora-scaling';
import { formatTargets, sortModules } from '../../../src-main/engine/rules/modules';
import { useConnection } from '../../stores/connection';
import { isLive, useJobs } from '../../stores/jobs';
import { useModel } from '../../stores/model';
import { useNav } from '../../stores/nav';
import { GGML_BITS, gridState, overridesFor, parseForm, RUN_NAME, suggestName, useQuantize } from '../../stores/quantize';
import { useRuns } from '../../stores/runs';
import { BitsGrid } from './BitsGrid';
import { JobProgress } from './JobProgress';
import { PlannerPanel } from './PlannerPanel';

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=,@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * What the form can tell before Run, in the app's words: a rank no chosen matrix can have, a
 * T past the engine's cap, blocks that do not divide the matrices (a partial last block), and
 * the scaling s the rank and alpha imply.
 */
export function formChecks(
  targets: readonly { name: string; shape: readonly [number, number] }[],
  v: { rank: number; alpha: number; iters: number; block: number },
  rslora: boolean,
  loftq: boolean,
): { errors: { rank?: string; iters?: string }; itersHint?: string; blockHint?: string; scaling: string } {
  const errors: { rank?: string; iters?: string } = {};
  let smallest: { name: string; shape: readonly [number, number] } | null = null;
  for (const t of targets) if (!smallest || Math.min(...t.shape) < Math.min(...smallest.shape)) smallest = t;
  if (smallest && v.rank > Math.min(...smallest.shape)) {
    errors.rank = `at most ${Math.min(...smallest.shape)}: ${smallest.name.replace(/^model\.layers\./, 'layer ')} is ${smallest.shape.join(' × ')}`;
  }
  if (loftq && v.iters > 100) errors.iters = 'at most 100: the error stops falling long before';
  const itersHint = loftq && v.iters > 20 && v.iters <= 100 ? 'past about 10 steps the error rarely falls further; the run stops when it stops falling' : undefined;
  const partial = targets.filter((t) => (t.shape[0] * t.shape[1]) % v.block !== 0).length;
  const blockHint = partial > 0 ? `does not divide ${partial === targets.length ? 'any' : `${partial} of the`} matrices: their last block is shorter` : undefined;
  const s = loraScaling(v.alpha, v.rank, rslora);
  const scaling = `scaling s = α/${rslora ? '√r' : 'r'} = ${Number.isFinite(s) ? Number(s.toPrecision(4)) : '–'}`;
  return { errors, itersHint, blockHint, scaling };
}

export function QuantizeView() {
  const summary = useModel((s) => s.summary);
  const openModel = useModel((s) => s.open);
  const info = useConnection((s) => s.info);
  const online = useConnection((s) => s.status.state === 'open');
  const go = useNav((s) => s.go);
  const { form, update, cycle, resetGrid, applyBits, start, submitting, error, jobId } = useQuantize();
  const runs = useRuns((s) => s.runs);

  const allModules = useMemo(() => sortModules(summary?.targets.map((t) => t.module) ?? []), [summary]);
  const targets = useMemo(() => {
    if (!summary) return [];
    const chosen = form.modules ? new Set(form.modules) : null;
    return summary.targets.filter((t) => !chosen || chosen.has(t.module));
  }, [summary, form.modules]);
  const parsed = parseForm(form);
  const modelPath = summary?.path ?? null;
  const { globalBits, presetOn, firstK } = form;
  // The grid belongs to the model it was made for: another model starts from none.
  const overrides = overridesFor(form, modelPath);
  const grid = useMemo(() => gridState({ globalBits, presetOn, firstK, overrides, gridModel: modelPath }), [globalBits, presetOn, firstK, overrides, modelPath]);
  const bits = useMemo(() => effectiveBits(targets, grid), [targets, grid]);
  const bitsMap = useMemo(() => buildBitsMap(targets, grid), [targets, grid]);
  const est = useMemo(
    () =>
      summary
        ? estimate({
            shapes: targets.map((t) => t.shape),
            bits,
            block: parsed.values.block,
            scaleBits: form.quant === 'ggml' ? 16 : 32,
            rank: parsed.values.rank,
            parameters: summary.parameters,
            dtype: summary.torch_dtype,
            weightBytes: summary.weight_bytes,
          })
        : null,
    [summary, targets, bits, parsed.values.block, parsed.values.rank, form.quant],
  );
  const taken = useMemo(() => new Set(runs.map((r) => r.name.split('/').pop() ?? r.name)), [runs]);
  const name = form.nameTouched ? form.name : suggestName(form, taken, modelPath);
  const nameError = !RUN_NAME.test(name) ? "letters, digits, '.', '_' or '-' (up to 128)" : taken.has(name) ? 'a run with this name exists' : undefined;
  const ggml = form.quant === 'ggml';
  const checks = formChecks(targets, parsed.values, form.rslora, form.method === 'loftq');
  const quantError = ggml && bits.some((b) => !GGML_BITS.includes(b)) ? 'q4_0 and q8_0 need every matrix at 4 or 8 bits: change the bits or the grid' : undefined;
  const errors = { ...checks.errors, ...parsed.errors, ...(nameError ? { name: nameError } : {}), ...(quantError ? { quant: quantError } : {}) };
  const valid = Object.keys(errors).length === 0 && targets.length > 0;
  const loftq = form.method === 'loftq';

  // Primitive selections: progress events (every frame during a run) do not re-render this view.
  const latestQuantize = useJobs((s) => {
    if (jobId && s.jobs[jobId]) return jobId;
    return s.order.find((id) => s.jobs[id].kind === 'quantize' && isLive(s.jobs[id])) ?? null;
  });
  const busy = useJobs((s) => s.order.some((id) => isLive(s.jobs[id])));

  if (!summary) {
    return (
      <div className="view">
        <div className="view-header">
          <h1>Quantize</h1>
        </div>
        <div className="panel empty">
          <p>Open a model first.</p>
          <div className="row" style={{ justifyContent: 'center' }}>
            <button type="button" onClick={() => go('models')}>
              Go to Models
            </button>
            <button type="button" className="primary" disabled={!online || !info?.demoModel} onClick={() => info?.demoModel && void openModel(info.demoModel)}>
              Open demo model
            </button>
          </div>
        </div>
        {latestQuantize && <JobProgress jobId={latestQuantize} />}
      </div>
    );
  }

  const request: QuantizeRequest = {
    model: summary.path,
    name,
    method: form.method,
    bits: form.globalBits,
    bitsMap: bitsMap || undefined,
    quant: form.quant,
    block: parsed.values.block,
    rank: parsed.values.rank,
    alpha: parsed.values.alpha,
    rslora: form.rslora,
    iters: loftq ? parsed.values.iters : 1,
    svd: form.svd,
    targets: formatTargets(form.modules),
    seed: parsed.values.seed,
    device: form.device,
  };
  const cli = [
    'loftq quantize',
    shellQuote(summary.path),
    `--out ${shellQuote(`${info?.runsDir ?? 'runs'}/${name}`)}`,
    `--method ${request.method}`,
    `--bits ${request.bits}`,
    bitsMap ? `--bits-map ${shellQuote(bitsMap)}` : '',
    `--quant ${ggml && !bitsMap && GGML_BITS.includes(request.bits) ? `q${request.bits}_0` : request.quant} --block ${request.block} --rank ${request.rank} --alpha ${request.alpha}`,
    request.rslora ? '--rslora' : '',
    loftq ? `--iters ${request.iters} --svd ${request.svd}` : '',
    request.targets !== 'all-linear' ? `--targets ${request.targets}` : '',
    request.seed ? `--seed ${request.seed}` : '',
    request.device && request.device !== 'auto' ? `--device ${request.device}` : '',
  ]
    .filter(Boolean)
    .join(' ');

  const toggleModule = (m: string, on: boolean) => {
    const current = form.modules ?? allModules;
    const next = on ? sortModules([...current, m]) : current.filter((x) => x !== m);
    update({ modules: next.length === allModules.length ? null : next });
  };
  const fp = summary.weight_bytes;

  return (
    <div className="view">
      <div className="view-header">
        <h1>Quantize</h1>
        <p className="mono ellipsis" title={summary.path}>
          {summary.path}
        </p>
      </div>
      <div className="cols-2">
        <form
          className="panel"
          aria-label="Quantize options"
          onSubmit={(e) => {
            e.preventDefault();
            if (valid && !submitting) void start(request);
          }}
        >
          <div className="form-grid">
            <div className="field span-2">
              <span className="flabel">
                Method
              </span>
              <Segmented
                label="Method"
                value={form.method}
                options={[
                  { value: 'loftq', label: 'LoftQ' },
                  { value: 'qlora', label: 'QLoRA' },
                ]}
                onChange={(method) => update({ method })}
              />
              <span className="hint">{loftq ? 'Alternating quantize / low-rank init: Q + s·B·A ≈ W.' : 'Q = q(W), B = 0: the adapter starts at zero.'}</span>
            </div>
            <div className="field span-2">
              <span className="flabel">
                Bits (all matrices)
              </span>
              <Segmented label="Bits" value={form.globalBits} options={BIT_CHOICES.map((b) => ({ value: b, label: `${b}-bit` }))} onChange={(globalBits) => update({ globalBits })} />
            </div>
            <fieldset className="span-2">
              <legend>Mixed precision (LoftQ paper)</legend>
              <div className="row">
                <label className="check">
                  <input type="checkbox" checked={form.presetOn} onChange={(e) => update({ presetOn: e.target.checked })} /> First
                </label>
                <input
                  type="number"
                  aria-label="Number of first layers"
                  min={1}
                  max={summary.layers}
                  style={{ width: 70 }}
                  value={form.firstK}
                  disabled={!form.presetOn}
                  aria-invalid={errors.firstK ? true : undefined}
                  onChange={(e) => update({ firstK: e.target.value })}
                />
                <span>layers at {PRESET_BITS} bits</span>
              </div>
              {errors.firstK && <div className="small" style={{ color: 'var(--danger)' }}>{errors.firstK}</div>}
            </fieldset>
            <fieldset className="span-2">
              <legend>Target modules</legend>
              <div className="row">
                {allModules.map((m) => (
                  <label key={m} className="check">
                    <input type="checkbox" checked={!form.modules || form.modules.includes(m)} onChange={(e) => toggleModule(m, e.target.checked)} />
                    {m}
                  </label>
                ))}
              </div>
              {errors.modules && <div className="small" style={{ color: 'var(--danger)' }}>{errors.modules}</div>}
            </fieldset>
            <TextField label="Rank r" type="number" min={1} value={form.rank} error={errors.rank} onChange={(rank) => update({ rank })} />
            <TextField label="LoRA alpha" type="number" min={0} step="any" value={form.alpha} error={errors.alpha} hint={errors.alpha ? undefined : checks.scaling} onChange={(alpha) => update({ alpha })} />
            <TextField
              label="Iterations T"
              type="number"
              min={1}
              value={form.iters}
              disabled={!loftq}
              error={loftq ? errors.iters : undefined}
              hint={loftq ? checks.itersHint : 'LoftQ only'}
              onChange={(iters) => update({ iters })}
            />
            <TextField label="Block size" type="number" min={1} value={form.block} error={errors.block} hint={errors.block ? undefined : checks.blockHint} onChange={(block) => update({ block })} />
            <SelectField
              label="Quantizer"
              value={form.quant}
              options={[
                { value: 'nf', label: 'NormalFloat (nf)' },
                { value: 'uniform', label: 'Uniform' },
                { value: 'ggml', label: 'llama.cpp q4_0 / q8_0' },
              ]}
              error={errors.quant}
              hint={
                ggml
                  ? '4-bit → q4_0, 8-bit → q8_0 (block 32, fp16 scales, llama.cpp’s rounding): the GGUF export runs exactly this Q'
                  : form.quant === 'nf' && bits.some((b) => b > 4)
                    ? '8-bit matrices use uniform levels'
                    : undefined
              }
              onChange={(quant) => update({ quant })}
            />
            <SelectField
              label="SVD"
              value={form.svd}
              options={[
                { value: 'randomized', label: 'Randomized' },
                { value: 'exact', label: 'Exact' },
              ]}
              hint={loftq ? undefined : 'LoftQ only'}
              disabled={!loftq}
              onChange={(svd) => update({ svd })}
            />
            <SelectField
              label="Device"
              value={form.device}
              options={[
                { value: 'auto', label: info?.device.cuda.available ? `Auto (GPU: ${info.device.name})` : 'Auto (CPU here)' },
                { value: 'cpu', label: 'CPU' },
                { value: 'cuda', label: info?.device.cuda.available ? `GPU (${info.device.name})` : 'GPU (not available)' },
              ]}
              hint={info && !info.device.cuda.available ? `No GPU: ${info.device.cuda.reason}` : undefined}
              onChange={(device) => update({ device })}
            />
            <label className="check">
              <input type="checkbox" checked={form.rslora} onChange={(e) => update({ rslora: e.target.checked })} /> rsLoRA scaling (α/√r)
            </label>
            <TextField label="Seed" type="number" min={0} value={form.seed} error={errors.seed} onChange={(seed) => update({ seed })} />
            <TextField
              className="span-2"
              label="Run name"
              value={name}
              error={errors.name}
              hint={form.nameTouched ? undefined : 'suggested from the options; type to change'}
              mono
              onChange={(v) => update({ name: v, nameTouched: true })}
            />
          </div>
          <div className="row" style={{ marginTop: 14 }}>
            <button type="submit" className="primary" disabled={!valid || submitting || !online}>
              {submitting ? 'Starting…' : busy ? 'Queue run' : 'Run'}
            </button>
            {form.nameTouched && (
              <button type="button" className="link" onClick={() => update({ nameTouched: false, name: '' })}>
                use suggested name
              </button>
            )}
          </div>
          <div style={{ marginTop: 10 }}>
            <ErrorNote error={error} />
          </div>
        </form>

        <div style={{ display: 'flex', flexDirection: 'column', gap: 16, minWidth: 0 }}>
          {est && (
            <section className="panel" aria-label="Estimate" aria-live="polite">
              <h2>Estimate</h2>
              <div className="stats">
                <Stat label="Average bits / weight" value={est.avgBits.toFixed(3)} sub={`codes + ${ggml ? 'fp16 scale' : 'fp32 absmax'} per ${parsed.values.block}`} />
                <Stat label="Backbone" value={formatBytes(est.backboneBytes)} sub={`${formatBytes(est.quantizedBytes)} quantized + ${formatBytes(est.otherBytes)} ${summary.torch_dtype}`} />
                <Stat label="Adapter" value={formatBytes(est.adapterBytes)} sub={`${formatCount(est.adapterParams)} params (fp32)`} />
                <Stat label="vs. original" value={`${((100 * (est.backboneBytes + est.adapterBytes)) / Math.max(1, fp)).toFixed(1)}%`} sub={`of ${formatBytes(fp)}`} />
              </div>
            </section>
          )}
          {!parsed.errors.block && !parsed.errors.rank && (
            <PlannerPanel
              model={summary.path}
              quant={form.quant}
              block={parsed.values.block}
              method={form.method}
              rank={parsed.values.rank}
              alpha={parsed.values.alpha}
              rslora={form.rslora}
              targets={targets}
              bits={bits}
              choices={ggml ? GGML_BITS : BIT_CHOICES}
              onApply={(chosen, rankAndAlpha) => {
                applyBits(summary.path, targets, chosen);
                if (rankAndAlpha) update({ rank: String(rankAndAlpha.rank), alpha: String(rankAndAlpha.alpha) });
              }}
            />
          )}
          <section className="panel" aria-label="Bits per matrix">
            <div className="row" style={{ marginBottom: 8 }}>
              <h2 className="grow">Bits per matrix</h2>
              <span className="small muted">{Object.keys(overrides).length} set in the grid</span>
              <button type="button" className="small" disabled={Object.keys(overrides).length === 0} onClick={resetGrid}>
                Reset grid
              </button>
            </div>
            <p className="small muted" style={{ marginTop: 0 }}>
              Click a cell to cycle 2 → 3 → 4 → 8 bits; click a layer or module header to set the whole row or column.
            </p>
            <BitsGrid targets={targets} bits={bits} overrides={overrides} onCycle={(cells, current) => cycle(summary.path, cells, current)} />
            <dl className="kv small" style={{ marginTop: 10 }}>
              <dt>--bits-map</dt>
              <dd className="mono wrap-any">
                {bitsMap || '(none: every matrix at --bits)'}
              </dd>
              <dt>CLI</dt>
              <dd className="mono wrap-any">
                {cli}
              </dd>
            </dl>
          </section>
        </div>
      </div>
      {latestQuantize && <JobProgress jobId={latestQuantize} scrollOnStart={latestQuantize === jobId} />}
    </div>
  );
}
