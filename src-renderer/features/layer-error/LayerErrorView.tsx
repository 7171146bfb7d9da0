// Layer error for one run: the init-error heatmap (layer × module), QLoRA's error vs the init
// error per matrix, the error per alternating step of a selected matrix, and that matrix's
// residual singular values. Each chart saves as PNG and CSV.
import { useDeferredValue, useEffect, useMemo, useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ReferenceArea, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { LayerRecord, RunDetail, RunSummary } from '../../../src-main/api/contract';
import { ChartCard } from '../../components/ChartCard';
import { axisProps, legendProps, tooltipProps } from '../../components/chart-style';
import { ErrorNote, Segmented, Stat, StatusBadge } from '../../components/common';
import { Heatmap } from '../../components/Heatmap';
import { StepChart } from '../../components/StepChart';
import { PredictedVsMeasured } from './PredictedVsMeasured';
import { usePalette } from '../../components/theme';
import { formatBytes, formatNum, formatSeconds } from '../../lib/format';
import { lossCurve, perLayerMean, perplexityCurve, perplexityCurveLabel } from '../../lib/metrics';
import { parseModulePath } from '../../../src-main/engine/rules/modules';
import { moduleLabel } from '../../lib/targets';
import { integerTicks, niceAxis } from '../../lib/ticks';
import { isLive, useJobs } from '../../stores/jobs';
import { useNav } from '../../stores/nav';
import { configValue, summaryNumber, useRuns } from '../../stores/runs';
import { layerCells } from '../quantize/JobProgress';

/** Beyond this many matrices the bars show per-layer means unless the user asks otherwise. */
const MAX_MATRIX_BARS = 140;

/** A short label for a matrix: L3.q, L12.down. */
export function shortName(name: string): string {
  const p = parseModulePath(name);
  return p ? `L${p.layer}.${moduleLabel(p.module)}` : name;
}

/** The run's layers: the stored ones, or the live job's when it has more (a run in progress). */
function useLayers(run: string | null, detail: RunDetail | null): LayerRecord[] {
  const liveId = useJobs((s) => (run ? s.order.find((id) => s.jobs[id]?.target === run && s.jobs[id]?.kind === 'quantize' && isLive(s.jobs[id])) : undefined));
  const live = useJobs((s) => (liveId ? s.progress[liveId]?.layers : undefined));
  const stored = detail?.layers ?? [];
  return live && live.length > stored.length ? live : stored;
}

export function RunPicker(props: { runs: RunSummary[]; value: string | null; onChange: (dir: string) => void; label?: string }) {
  return (
    <label className="row">
      <span className="flabel">{props.label ?? 'Run'}</span>
      <select value={props.value ?? ''} onChange={(e) => props.onChange(e.target.value)}>
        {props.value === null && <option value="">Choose a run…</option>}
        {props.runs.map((r) => (
          <option key={r.dir} value={r.dir}>
            {r.name} ({r.record.status})
          </option>
        ))}
      </select>
    </label>
  );
}

export function LayerErrorView() {
  const runs = useRuns((s) => s.runs);
  const version = useRuns((s) => s.version);
  const loadDetail = useRuns((s) => s.loadDetail);
  const navRun = useNav((s) => s.run);
  const go = useNav((s) => s.go);
  const palette = usePalette();
  const run = navRun ?? runs.find((r) => r.record.status === 'done')?.dir ?? runs[0]?.dir ?? null;
  const entry = useRuns((s) => (run ? s.details[run] : undefined));
  const summary = runs.find((r) => r.dir === run) ?? (entry?.data ? { dir: entry.data.dir, name: entry.data.name, record: entry.data.record } : undefined);

  useEffect(() => {
    if (run) void loadDetail(run);
  }, [run, version, loadDetail]);
  // A run made elsewhere (the CLI) since the list was loaded: refresh the list once.
  const refresh = useRuns((s) => s.refresh);
  const known = run === null || runs.some((r) => r.dir === run);
  useEffect(() => {
    if (!known) void refresh();
  }, [known, refresh]);

  const layers = useLayers(run, entry?.data ?? null);
  const [selected, setSelected] = useState<string | null>(null);
  const [logSv, setLogSv] = useState(false);
  const current = layers.find((l) => l.name === selected) ?? layers[0];
  const cells = useMemo(() => layerCells(layers), [layers]);
  // Bars per matrix, or per layer (means) when there are too many matrices to read or draw.
  const [barMode, setBarMode] = useState<'auto' | 'matrix' | 'layer'>('auto');
  const perLayer = barMode === 'layer' || (barMode === 'auto' && layers.length > MAX_MATRIX_BARS);
  // The charts follow the heatmap by a frame: the view paints first, recharts catches up.
  const chartLayers = useDeferredValue(layers);
  const bars = useMemo(() => {
    const layers = chartLayers;
    if (!perLayer) return layers.map((l) => ({ name: l.name, label: shortName(l.name), err_q: l.err_q, err_init: l.err_init }));
    const q = perLayerMean(layers, 'err_q');
    const init = perLayerMean(layers, 'err_init');
    const first = new Map<number, string>();
    for (const l of layers) {
      const p = parseModulePath(l.name);
      if (p && !first.has(p.layer)) first.set(p.layer, l.name);
    }
    return [...init.keys()].map((layer) => ({ name: first.get(layer) ?? '', label: `L${layer}`, err_q: q.get(layer) ?? NaN, err_init: init.get(layer) ?? NaN }));
  }, [chartLayers, perLayer]);
  const steps = useMemo(() => (current ? [{ step: 0, err: current.err_q }, ...current.step_errors.map((err, i) => ({ step: i + 1, err }))] : []), [current]);
  const spectrum = useMemo(() => (current ? current.residual_top_sv.map((sv, i) => ({ index: i + 1, sv })) : []), [current]);
  // Ticks a person reads at a glance (0.05, 0.1 …; σ1, σ5, σ10 …), not recharts' 0.05299.
  const barAxis = useMemo(() => niceAxis(0, Math.max(0, ...bars.flatMap((b) => [b.err_q, b.err_init]).filter(Number.isFinite)), 5, 0), [bars]);
  const stepAxis = useMemo(() => niceAxis(Math.min(...steps.map((s) => s.err)), Math.max(...steps.map((s) => s.err)), 5, 0), [steps]);
  const svAxis = useMemo(() => niceAxis(0, Math.max(0, ...spectrum.map((s) => s.sv)), 5, 0), [spectrum]);
  const svTicks = useMemo(() => integerTicks(1, spectrum.length, 9), [spectrum.length]);
  // Fine-tuning of this run (loftq train), refreshed as metrics.jsonl grows.
  const metrics = entry?.data?.metrics;
  const training = useMemo(() => {
    const m = metrics ?? [];
    return {
      loss: lossCurve(m).map((c) => ({ step: c.step, run: c.loss })),
      ppl: perplexityCurve(m, 'q+lora').map((c) => ({ step: c.step, run: c.ppl })),
      pplLabel: perplexityCurveLabel(m, 'q+lora'),
    };
  }, [metrics]);

  if (!run) {
    return (
      <div className="view">
        <div className="view-header">
          <h1>Layer error</h1>
        </div>
        <div className="panel empty">No runs yet. Start one in Quantize, or pick one in Runs.</div>
      </div>
    );
  }
  const name = summary?.name ?? run;
  const method = summary ? String(configValue(summary, 'method') ?? '') : '';
  const rank = summary ? configValue<number>(summary, 'rank') : undefined;
  const manyBars = bars.length > 60;

  return (
    <div className="view">
      <div className="view-header">
        <h1>Layer error</h1>
        <RunPicker runs={runs} value={run} onChange={(dir) => go('layers', dir)} />
        {summary && <StatusBadge status={summary.record.status} />}
      </div>
      <ErrorNote error={entry?.error} />
      {summary && (
        <section className="panel" aria-label="Run summary">
          <div className="stats">
            <Stat label="Method" value={method || '–'} sub={`rank ${rank ?? '–'} · α ${String(configValue(summary, 'alpha') ?? '–')} · T ${String(configValue(summary, 'iters') ?? '–')}`} />
            <Stat label="Bits" value={`${String(configValue(summary, 'bits') ?? '–')}${configValue(summary, 'bits_map') ? ' + map' : ''}`} sub={String(configValue(summary, 'bits_map') ?? `${String(configValue(summary, 'quant') ?? '')} · block ${String(configValue(summary, 'block') ?? '')}`)} />
            <Stat label="Average bits" value={formatNum(summaryNumber(summary, 'avg_bits'))} sub={`${formatBytes(summaryNumber(summary, 'quantized_bytes') ?? NaN)} quantized`} />
            <Stat label="Mean err_q (QLoRA)" value={formatNum(summaryNumber(summary, 'mean_err_q'))} />
            <Stat label="Mean err_init" value={formatNum(summaryNumber(summary, 'mean_err_init'))} sub={`max ${formatNum(summaryNumber(summary, 'max_err_init'))}`} />
            <Stat label="Matrices" value={layers.length} sub={formatSeconds(summary.record.timings?.total_s)} />
            <Stat label="Device" value={typeof summary.record.device?.name === 'string' ? summary.record.device.name : '–'} sub={typeof summary.record.device?.reason === 'string' ? summary.record.device.reason : 'not recorded'} />
          </div>
          {summary.record.error && <div className="note error" style={{ marginTop: 10 }}>{summary.record.error}</div>}
        </section>
      )}
      {entry?.loading && layers.length === 0 && <div className="panel empty">Loading…</div>}
      {layers.length > 0 && (
        <>
          <ChartCard
            title="Init error per matrix (layer × module)"
            fileBase={name}
            data={() => ({
              columns: ['name', 'layer', 'module', 'shape_out', 'shape_in', 'bits', 'err_q', 'err_init'],
              rows: layers.map((l) => {
                const p = parseModulePath(l.name);
                return [l.name, p?.layer, p?.module, l.shape[0], l.shape[1], l.bits, l.err_q, l.err_init];
              }),
            })}
            actions={
              <label className="row small">
                <span className="muted">Matrix</span>
                <select value={current?.name ?? ''} onChange={(e) => setSelected(e.target.value)}>
                  {layers.map((l) => (
                    <option key={l.name} value={l.name}>
                      {l.name}
                    </option>
                  ))}
                </select>
              </label>
            }
          >
            <Heatmap cells={cells} valueLabel="err_init" label={`Init error heatmap of ${name}`} selected={current?.name} onSelect={setSelected} />
          </ChartCard>
          <ChartCard
            title={perLayer ? 'QLoRA error vs init error (layer means)' : 'QLoRA error vs init error'}
            fileBase={name}
            actions={
              <Segmented
                label="Bars"
                value={perLayer ? 'layer' : 'matrix'}
                options={[
                  { value: 'matrix', label: 'per matrix' },
                  { value: 'layer', label: 'per layer' },
                ]}
                onChange={setBarMode}
              />
            }
            legend={[
              { name: 'err_q (Q alone)', color: palette.errQ },
              { name: `err_init (${method || 'init'})`, color: palette.errInit },
            ]}
            data={() =>
              perLayer
                ? { columns: ['layer', 'mean_err_q', 'mean_err_init'], rows: bars.map((b) => [b.label.slice(1), b.err_q, b.err_init]) }
                : { columns: ['name', 'err_q', 'err_init'], rows: layers.map((l) => [l.name, l.err_q, l.err_init]) }
            }
          >
            <ResponsiveContainer width="100%" height={280}>
              <BarChart data={bars} margin={{ top: 8, right: 16, bottom: manyBars ? 8 : 24, left: 8 }} barCategoryGap={manyBars ? 0 : '15%'}>
                <CartesianGrid stroke={palette.grid} vertical={false} />
                <XAxis dataKey="label" {...axisProps(palette)} interval={manyBars ? Math.ceil(bars.length / 30) : 0} angle={-40} textAnchor="end" height={manyBars ? 44 : 52} />
                <YAxis {...axisProps(palette)} domain={barAxis.domain} ticks={barAxis.ticks} tickFormatter={barAxis.format} width={64} label={{ value: 'relative error', angle: -90, position: 'insideLeft', fill: palette.muted, fontSize: 11, style: { textAnchor: 'middle' } }} />
                <Tooltip {...tooltipProps(palette)} formatter={(v) => formatNum(v)} labelFormatter={(l, p) => (perLayer ? `layer ${String(l).slice(1)} (mean)` : ((p?.[0]?.payload as { name?: string } | undefined)?.name ?? ''))} />
                <Legend {...legendProps(palette)} />
                <Bar dataKey="err_q" name="err_q (Q alone)" fill={palette.errQ} isAnimationActive={false} onClick={(_d, i) => setSelected(bars[i]?.name ?? null)} />
                <Bar dataKey="err_init" name={`err_init (${method || 'init'})`} fill={palette.errInit} isAnimationActive={false} onClick={(_d, i) => setSelected(bars[i]?.name ?? null)} />
              </BarChart>
            </ResponsiveContainer>
          </ChartCard>
          {current && (
            <div className="cols-charts">
              {method === 'qlora' ? (
                <section className="panel" aria-label="Alternating steps">
                  <h3>No alternating steps</h3>
                  <p className="small muted">
                    QLoRA quantizes W once and starts the adapter at B = 0, so its error is that of Q alone: err = ‖W − Q‖ / ‖W‖ = {formatNum(current.err_q)} for {shortName(current.name)}. LoftQ runs
                    show their steps here.
                  </p>
                </section>
              ) : (
              <ChartCard
                title={`Error per alternating step: ${shortName(current.name)}`}
                fileBase={name}
                legend={[{ name: current.name, color: palette.series[0] }]}
                data={() => ({ columns: ['step', 'relative_error'], rows: steps.map((s) => [s.step, s.err]) })}
              >
                <ResponsiveContainer width="100%" height={240}>
                  <LineChart data={steps} margin={{ top: 8, right: 16, bottom: 4, left: 8 }}>
                    <CartesianGrid stroke={palette.grid} />
                    <XAxis dataKey="step" {...axisProps(palette)} tickFormatter={(v) => (v === 0 ? 'Q' : `T${String(v)}`)} />
                    <YAxis {...axisProps(palette)} domain={stepAxis.domain} ticks={stepAxis.ticks} tickFormatter={stepAxis.format} width={64} label={{ value: 'relative error', angle: -90, position: 'insideLeft', fill: palette.muted, fontSize: 11, style: { textAnchor: 'middle' } }} />
                    <Tooltip {...tooltipProps(palette)} formatter={(v) => formatNum(v)} />
                    <Line type="linear" dataKey="err" name="‖W − Q − sBA‖ / ‖W‖" stroke={palette.series[0]} strokeWidth={2} dot isAnimationActive={false} />
                  </LineChart>
                </ResponsiveContainer>
                <p className="small muted" style={{ margin: 0 }}>
                  Step Q is q(W) alone (QLoRA&apos;s error); T1… are LoftQ&apos;s alternating steps. err = ‖W − Q − s·B·A‖ / ‖W‖. {current.name} · [{current.shape[0]} × {current.shape[1]}] · {current.bits} bits ·{' '}
                  {formatSeconds(current.seconds)}
                </p>
              </ChartCard>
              )}
              <SpectrumChart name={name} layer={current} method={method} rank={rank} log={logSv} onLog={setLogSv} spectrum={spectrum} axis={svAxis} ticks={svTicks} />
            </div>
          )}
        </>
      )}
      {summary && layers.length > 0 && <PredictedVsMeasured run={summary} layers={layers} />}
      {!entry?.loading && layers.length === 0 && entry?.data && <div className="panel empty">This run has no finished matrices.</div>}
      {training.loss.length + training.ppl.length > 0 && (
        <div className="cols-2">
          {training.loss.length > 0 && (
            <ChartCard
              title="Training loss"
              fileBase={`${name}-loss`}
              data={() => ({ columns: ['step', 'loss'], rows: training.loss.map((r) => [r.step, r.run]) })}
            >
              <StepChart data={training.loss} series={[{ key: 'run', color: palette.series[0], run: { name: 'loss' } }]} log={false} palette={palette} dots={false} yLabel="loss (nats / token)" />
            </ChartCard>
          )}
          {training.ppl.length > 0 && (
            <ChartCard
              title="Held-out perplexity (Q + adapter)"
              fileBase={`${name}-ppl`}
              data={() => ({ columns: ['step', 'perplexity'], rows: training.ppl.map((r) => [r.step, r.run]) })}
            >
              {training.pplLabel && <p className="small muted chart-note">Measured on {training.pplLabel}.</p>}
              <StepChart data={training.ppl} series={[{ key: 'run', color: palette.series[1], run: { name: 'perplexity' } }]} log={false} palette={palette} dots yLabel="perplexity" />
            </ChartCard>
          )}
        </div>
      )}
    </div>
  );
}

/**
 * The singular values of W − Q for one matrix, with r marked: left of the line what the
 * rank-r term holds (LoftQ) or could hold (QLoRA starts at B = 0, so all is left), right of it
 * what stays in W − Q − s·B·A. Runs made before the engine recorded past r show up to σr.
 */
function SpectrumChart(props: {
  name: string;
  layer: LayerRecord;
  method: string;
  rank: number | undefined;
  log: boolean;
  onLog: (log: boolean) => void;
  spectrum: { index: number; sv: number }[];
  axis: ReturnType<typeof niceAxis>;
  ticks: number[];
}) {
  const { name, layer, method, rank, log, spectrum } = props;
  const palette = usePalette();
  const qlora = method === 'qlora';
  const marked = typeof rank === 'number' && rank <= spectrum.length;
  const pastR = marked && spectrum.length > rank;
  return (
    <ChartCard
      title={`Singular values of W − Q: ${shortName(layer.name)}`}
      fileBase={name}
      legend={[{ name: 'σᵢ of W − Q', color: palette.series[2] }]}
      data={() => ({ columns: ['index', 'singular_value'], rows: spectrum.map((s) => [s.index, s.sv]) })}
      actions={
        <Segmented
          label="Scale"
          value={log ? 'log' : 'linear'}
          options={[
            { value: 'linear', label: 'linear' },
            { value: 'log', label: 'log' },
          ]}
          onChange={(v) => props.onLog(v === 'log')}
        />
      }
    >
      {spectrum.length === 0 ? (
        <div className="empty">This matrix has no recorded spectrum.</div>
      ) : (
        <ResponsiveContainer width="100%" height={240}>
          <LineChart data={spectrum} margin={{ top: 20, right: 24, bottom: 4, left: 8 }}>
            <CartesianGrid stroke={palette.grid} />
            <XAxis dataKey="index" type="number" domain={[1, spectrum.length]} ticks={props.ticks} allowDecimals={false} {...axisProps(palette)} tickFormatter={(v) => `σ${String(v)}`} />
            <YAxis
              {...axisProps(palette)}
              scale={log ? 'log' : 'auto'}
              domain={log ? ['auto', 'auto'] : props.axis.domain}
              ticks={log ? undefined : props.axis.ticks}
              allowDataOverflow
              tickFormatter={log ? (v: number) => formatNum(v, 2) : props.axis.format}
              width={64}
              label={{ value: 'singular value', angle: -90, position: 'insideLeft', fill: palette.muted, fontSize: 11, style: { textAnchor: 'middle' } }}
            />
            <Tooltip {...tooltipProps(palette)} formatter={(v) => formatNum(v)} labelFormatter={(l) => `σ${String(l)}`} />
            {pastR && <ReferenceArea x1={rank + 0.5} x2={spectrum.length} fill={palette.muted} fillOpacity={0.08} ifOverflow="extendDomain" />}
            <Line type="linear" dataKey="sv" name="σ" stroke={palette.series[2]} strokeWidth={2} dot={spectrum.length <= 64} isAnimationActive={false} />
            {marked && (
              <ReferenceLine
                x={rank + (pastR ? 0.5 : 0)}
                stroke={palette.muted}
                strokeDasharray="4 3"
                label={{ value: `r = ${rank}`, fill: palette.muted, position: pastR ? 'insideTopLeft' : 'insideTopRight', offset: 6, fontSize: 11 }}
              />
            )}
          </LineChart>
        </ResponsiveContainer>
      )}
      {spectrum.length > 0 && typeof rank === 'number' && (
        <p className="small muted" style={{ margin: 0 }}>
          {qlora
            ? `QLoRA starts the adapter at B = 0, so all of W − Q is left at the start; a rank-${rank} term (LoftQ) could hold σ1…σ${rank}, left of the dashed line.`
            : `σ1…σ${rank} are what the rank-${rank} adapter holds (s·B·A)${pastR ? `; right of the dashed line, what it leaves in W − Q − s·B·A` : ''}.`}
          {!pastR && spectrum.length <= rank ? ' This run recorded the spectrum up to σr only (made before the engine recorded past it).' : ''}
        </p>
      )}
    </ChartCard>
  );
}
