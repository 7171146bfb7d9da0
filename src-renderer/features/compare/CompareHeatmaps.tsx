// The compared runs' init-error heatmaps on one colour scale (a colour means the same error in
// every map), and for a QLoRA/LoftQ pair of the same matrices the difference map
// LoftQ − QLoRA (below zero: LoftQ's initialization is closer to W).
import type { LayerRecord, RunSummary } from '../../../src-main/api/contract';
import { ChartCard } from '../../components/ChartCard';
import { Heatmap, type HeatCell } from '../../components/Heatmap';
import { configValue } from '../../stores/runs';
import { layerCells } from '../quantize/JobProgress';

export interface HeatmapRun {
  run: RunSummary;
  layers: readonly LayerRecord[];
}

/** The shared [min, max] of err_init over all the runs' matrices. */
export function sharedDomain(runs: readonly HeatmapRun[]): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of runs) {
    for (const l of r.layers) {
      if (!Number.isFinite(l.err_init)) continue;
      lo = Math.min(lo, l.err_init);
      hi = Math.max(hi, l.err_init);
    }
  }
  return Number.isFinite(lo) ? [lo, hi] : undefined;
}

/** LoftQ − QLoRA err_init per matrix both runs have, when the runs are such a pair; else null. */
export function differenceCells(runs: readonly HeatmapRun[]): { cells: HeatCell[]; loftq: RunSummary; qlora: RunSummary } | null {
  const loftq = runs.find((r) => configValue(r.run, 'method') === 'loftq');
  const qlora = runs.find((r) => configValue(r.run, 'method') === 'qlora');
  if (!loftq || !qlora) return null;
  const base = new Map(qlora.layers.map((l) => [l.name, l.err_init]));
  const cells = layerCells(loftq.layers)
    .filter((c) => base.has(c.name))
    .map((c) => ({ ...c, value: c.value - (base.get(c.name) as number) }));
  return cells.length > 0 ? { cells, loftq: loftq.run, qlora: qlora.run } : null;
}

export function CompareHeatmaps(props: { runs: readonly HeatmapRun[] }) {
  const shown = props.runs.filter((r) => r.layers.length > 0);
  if (shown.length === 0) return null;
  const domain = sharedDomain(shown);
  const diff = differenceCells(shown);
  return (
    <div className="cols-charts">
      {shown.map((r) => (
        <ChartCard
          key={r.run.dir}
          title={`err_init: ${r.run.name}`}
          fileBase={r.run.name}
          data={() => ({ columns: ['matrix', 'err_init'], rows: r.layers.map((l) => [l.name, l.err_init]) })}
        >
          <Heatmap cells={layerCells(r.layers)} valueLabel="err_init" domain={domain} label={`Init error heatmap of ${r.run.name} (shared scale)`} />
        </ChartCard>
      ))}
      {diff && (
        <ChartCard
          title={`LoftQ − QLoRA: ${diff.loftq.name} − ${diff.qlora.name}`}
          fileBase={`${diff.loftq.name}-minus-${diff.qlora.name}`}
          data={() => ({ columns: ['matrix', 'err_init_difference'], rows: diff.cells.map((c) => [c.name, c.value]) })}
        >
          <Heatmap cells={diff.cells} valueLabel="Δ err_init" label={`Difference map ${diff.loftq.name} minus ${diff.qlora.name}`} />
          <p className="small muted" style={{ margin: 0 }}>
            err_init of LoftQ minus that of QLoRA for each matrix; below zero LoftQ&apos;s initialization is closer to W.
          </p>
        </ChartCard>
      )}
    </div>
  );
}
