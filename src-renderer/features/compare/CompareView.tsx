// Compare: pick runs, overlay their per-layer init errors (and loss curves once runs have
// training metrics), and a summary table of the numbers that matter.
import { useEffect, useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { RunSummary } from '../../../src-main/api/contract';
import { ChartCard } from '../../components/ChartCard';
import { axisProps, legendProps, numberTick, tooltipProps } from '../../components/chart-style';
import { Segmented, StatusBadge } from '../../components/common';
import { usePalette } from '../../components/theme';
import { formatBytes, formatNum } from '../../lib/format';
import { latestPerplexity, latestPerplexityLabel, lossCurve, perLayerMean, perplexityCurve, perplexityCurveLabel, smooth } from '../../lib/metrics';
import { useCompare } from '../../stores/compare';
import { useNav } from '../../stores/nav';
import { configValue, summaryNumber, useRuns } from '../../stores/runs';
import { bitsText } from '../runs/RunsView';
import { StepChart } from '../../components/StepChart';
import { CompareHeatmaps } from './CompareHeatmaps';
import { EvaluatePanel } from './EvaluatePanel';

function memoryBytes(r: RunSummary): number | undefined {
  const q = summaryNumber(r, 'quantized_bytes');
  const a = summaryNumber(r, 'adapter_params');
  return q === undefined ? undefined : q + (a ?? 0) * 4;
}

/**
 * The pair Compare opens with: the newest finished run and one of the same model, bits and
 * quantizer with the other initialization (QLoRA vs LoftQ), so the first thing shown compares
 * like with like; else the two newest finished runs.
 */
export function defaultPair(runs: readonly RunSummary[]): string[] {
  const done = runs.filter((r) => r.record.status === 'done').sort((a, b) => b.record.created.localeCompare(a.record.created));
  const same = (a: RunSummary, b: RunSummary) =>
    a.record.model.path === b.record.model.path &&
    (['bits', 'bits_map', 'quant', 'block'] as const).every((k) => JSON.stringify(configValue(a, k) ?? null) === JSON.stringify(configValue(b, k) ?? null));
  for (const r of done) {
    const other = done.find((o) => o !== r && same(o, r) && configValue(o, 'method') !== configValue(r, 'method'));
    if (other) return configValue(r, 'method') === 'qlora' ? [r.dir, other.dir] : [other.dir, r.dir];
  }
  return done.slice(0, 2).map((r) => r.dir);
}

/** A colour per run that stays whatever else is selected: by the run's place in creation order. */
export function runColors(runs: readonly RunSummary[], series: readonly string[]): Map<string, string> {
  const byAge = [...runs].sort((a, b) => a.record.created.localeCompare(b.record.created) || a.dir.localeCompare(b.dir));
  return new Map(byAge.map((r, i) => [r.dir, series[i % series.length]]));
}

export function CompareView() {
  const runs = useRuns((s) => s.runs);
  const details = useRuns((s) => s.details);
  const version = useRuns((s) => s.version);
  const loadDetail = useRuns((s) => s.loadDetail);
  const { selected: chosen, touched, set: setChosen } = useCompare();
  const go = useNav((s) => s.go);
  const palette = usePalette();
  const [metric, setMetric] = useState<'err_init' | 'err_q'>('err_init');
  const [smoothing, setSmoothing] = useState(0.6);
  const [logLoss, setLogLoss] = useState(false);

  const known = new Set(runs.map((r) => r.dir));
  const selected = (touched ? chosen : defaultPair(runs)).filter((d) => known.has(d));
  const selectedRuns = selected.map((d) => runs.find((r) => r.dir === d)!).filter(Boolean);
  const key = selected.join('\n');

  useEffect(() => {
    for (const dir of key ? key.split('\n') : []) void loadDetail(dir);
  }, [key, version, loadDetail]);

  const colors = runColors(runs, palette.series);
  const series = selectedRuns.map((r, i) => ({ run: r, key: `run${i}`, color: colors.get(r.dir) ?? palette.series[0], detail: details[r.dir]?.data ?? null }));
  // What the perplexities were measured on, said next to them (runs measured differently are listed once each).
  const distinct = (labels: Array<string | null>) => [...new Set(labels.filter((l): l is string => l !== null))].join('; ') || null;
  const pplLabel = distinct(series.map((s) => (s.detail ? perplexityCurveLabel(s.detail.metrics, 'q+lora') : null)));
  const tableLabel = distinct(series.map((s) => (s.detail ? latestPerplexityLabel(s.detail.metrics) : null)));

  const layerData = (() => {
    const rows = new Map<number, Record<string, number>>();
    for (const s of series) {
      if (!s.detail) continue;
      for (const [layer, v] of perLayerMean(s.detail.layers, metric)) {
        const row = rows.get(layer) ?? { layer };
        row[s.key] = v;
        rows.set(layer, row);
      }
    }
    return [...rows.values()].sort((a, b) => a.layer - b.layer);
  })();

  const lossData = (() => {
    const rows = new Map<number, Record<string, number>>();
    for (const s of series) {
      if (!s.detail) continue;
      const curve = lossCurve(s.detail.metrics);
      const sm = smooth(
        curve.map((c) => c.loss),
        smoothing,
      );
      curve.forEach((c, i) => {
        const row = rows.get(c.step) ?? { step: c.step };
        row[s.key] = sm[i];
        rows.set(c.step, row);
      });
    }
    return [...rows.values()].sort((a, b) => a.step - b.step);
  })();

  // Perplexity of Q + adapter over training steps (step 0: the initialization).
  const pplData = (() => {
    const rows = new Map<number, Record<string, number>>();
    for (const s of series) {
      if (!s.detail) continue;
      for (const c of perplexityCurve(s.detail.metrics, 'q+lora')) {
        const row = rows.get(c.step) ?? { step: c.step };
        row[s.key] = c.ppl;
        rows.set(c.step, row);
      }
    }
    return [...rows.values()].sort((a, b) => a.step - b.step);
  })();

  return (
    <div className="view">
      <div className="view-header">
        <h1>Compare</h1>
        <p>Pick two or more runs of the same model to overlay their errors.</p>
      </div>
      <section className="panel" aria-label="Runs to compare">
        <fieldset>
          <legend>Runs</legend>
          {runs.length === 0 ? (
            <div className="muted">No runs yet.</div>
          ) : (
            <div className="row" style={{ alignItems: 'flex-start' }}>
              {runs.map((r) => (
                <label key={r.dir} className="check" style={{ minWidth: 220 }}>
                  <input type="checkbox" checked={selected.includes(r.dir)} onChange={(e) => setChosen(e.target.checked ? [...selected, r.dir] : selected.filter((d) => d !== r.dir))} />
                  <span className="mono">{r.name}</span> <StatusBadge status={r.record.status} />
                </label>
              ))}
            </div>
          )}
        </fieldset>
      </section>
      {selectedRuns.length > 0 && <EvaluatePanel runs={selectedRuns} />}
      {selectedRuns.length > 0 && (
        <>
          <section className="panel" aria-label="Summary table">
            <h2>Summary</h2>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Run</th>
                    <th scope="col">Method</th>
                    <th scope="col" className="num">Bits</th>
                    <th scope="col" className="num wide-only">Rank</th>
                    <th scope="col" className="num wide-only">Avg bits</th>
                    <th scope="col" className="num wide-only">Memory</th>
                    <th scope="col" className="num">Mean err_q</th>
                    <th scope="col" className="num">Mean err_init</th>
                    <th scope="col" className="num wide-only">Max err_init</th>
                    <th scope="col" className="num" title="perplexity with Q + adapter / Q alone / the original weights, when measured (loftq eval)">
                      PPL q+lora / q / fp
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {series.map((s) => {
                    const ppl = s.detail ? latestPerplexity(s.detail.metrics) : {};
                    return (
                      <tr key={s.run.dir}>
                        <td>
                          <span className="dot" style={{ display: 'inline-block', background: s.color, marginRight: 6 }} aria-hidden="true" />
                          <button type="button" className="link mono" onClick={() => go('layers', s.run.dir)}>
                            {s.run.name}
                          </button>
                        </td>
                        <td>{String(configValue(s.run, 'method') ?? '–')}</td>
                        <td className="num">{bitsText(s.run)}</td>
                        <td className="num wide-only">{String(configValue(s.run, 'rank') ?? '–')}</td>
                        <td className="num wide-only">{formatNum(summaryNumber(s.run, 'avg_bits'))}</td>
                        <td className="num wide-only" title="quantized codes + absmax + fp32 adapter">
                          {memoryBytes(s.run) === undefined ? '–' : formatBytes(memoryBytes(s.run)!)}
                        </td>
                        <td className="num">{formatNum(summaryNumber(s.run, 'mean_err_q'))}</td>
                        <td className="num">{formatNum(summaryNumber(s.run, 'mean_err_init'))}</td>
                        <td className="num wide-only">{formatNum(summaryNumber(s.run, 'max_err_init'))}</td>
                        <td className="num">
                          {ppl['q+lora'] === undefined && ppl.q === undefined && ppl.fp === undefined
                            ? '–'
                            : `${formatNum(ppl['q+lora'])} / ${formatNum(ppl.q)} / ${formatNum(ppl.fp)}`}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
            {tableLabel && <p className="small muted">Perplexity measured on {tableLabel}.</p>}
          </section>
          <CompareHeatmaps runs={series.filter((s) => s.detail).map((s) => ({ run: s.run, layers: s.detail!.layers }))} />
          <ChartCard
            title={`Mean ${metric} per layer`}
            fileBase="compare"
            legend={series.map((s) => ({ name: s.run.name, color: s.color }))}
            data={() => ({ columns: ['layer', ...series.map((s) => s.run.name)], rows: layerData.map((r) => [r.layer, ...series.map((s) => r[s.key])]) })}
            actions={
              <Segmented
                label="Error"
                value={metric}
                options={[
                  { value: 'err_init', label: 'err_init' },
                  { value: 'err_q', label: 'err_q' },
                ]}
                onChange={setMetric}
              />
            }
          >
            <ResponsiveContainer width="100%" height={300}>
              <LineChart data={layerData} margin={{ top: 8, right: 16, bottom: 4, left: 8 }} syncId="compare">
                <CartesianGrid stroke={palette.grid} />
                <XAxis dataKey="layer" {...axisProps(palette)} tickFormatter={(v) => `L${String(v)}`} />
                <YAxis {...axisProps(palette)} domain={[(min: number) => Math.max(0, min - 0.05 * min), 'auto']} tickFormatter={numberTick} width={64} label={{ value: 'relative error', angle: -90, position: 'insideLeft', fill: palette.muted, fontSize: 11, style: { textAnchor: 'middle' } }} />
                <Tooltip {...tooltipProps(palette)} formatter={(v) => formatNum(v)} labelFormatter={(l) => `layer ${String(l)}`} />
                <Legend {...legendProps(palette)} />
                {series.map((s) => (
                  <Line key={s.key} type="linear" dataKey={s.key} name={s.run.name} stroke={s.color} strokeWidth={2} dot={layerData.length <= 40} isAnimationActive={false} connectNulls />
                ))}
              </LineChart>
            </ResponsiveContainer>
            <p className="small muted" style={{ margin: 0 }}>
              Mean over each decoder layer&apos;s matrices of err_init = ‖W − Q − s·B·A‖ / ‖W‖ (the initialization&apos;s error) or err_q = ‖W − Q‖ / ‖W‖ (Q alone, QLoRA&apos;s).
            </p>
          </ChartCard>
          {lossData.length > 0 && (
            <ChartCard
              title="Training loss"
              fileBase="compare"
              legend={series.map((s) => ({ name: s.run.name, color: s.color }))}
              data={() => ({ columns: ['step', ...series.map((s) => s.run.name)], rows: lossData.map((r) => [r.step, ...series.map((s) => r[s.key])]) })}
              actions={
                <div className="row small">
                  <label className="row">
                    <span className="muted">Smoothing {smoothing.toFixed(2)}</span>
                    <input type="range" min={0} max={0.99} step={0.01} value={smoothing} onChange={(e) => setSmoothing(Number(e.target.value))} />
                  </label>
                  <label className="check">
                    <input type="checkbox" checked={logLoss} onChange={(e) => setLogLoss(e.target.checked)} /> log scale
                  </label>
                </div>
              }
            >
              <StepChart data={lossData} series={series} log={logLoss} palette={palette} dots={false} yLabel="loss (nats / token)" />
            </ChartCard>
          )}
          {pplData.length > 0 && (
            <ChartCard
              title="Perplexity (Q + adapter)"
              fileBase="compare-ppl"
              legend={series.map((s) => ({ name: s.run.name, color: s.color }))}
              data={() => ({ columns: ['step', ...series.map((s) => s.run.name)], rows: pplData.map((r) => [r.step, ...series.map((s) => r[s.key])]) })}
              actions={
                <label className="check small">
                  <input type="checkbox" checked={logLoss} onChange={(e) => setLogLoss(e.target.checked)} /> log scale
                </label>
              }
            >
              {pplLabel && <p className="small muted chart-note">Measured on {pplLabel}.</p>}
              <StepChart data={pplData} series={series} log={logLoss} palette={palette} dots yLabel="perplexity" />
            </ChartCard>
          )}
        </>
      )}
    </div>
  );
}
