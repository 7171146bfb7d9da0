// After a run: the planner's prediction for the run's method, bits and rank against the error
// the run measured, per matrix. QLoRA's prediction is ‖W − Q‖ itself (the same quantizer: on
// the diagonal); LoftQ's is one alternating step, which T = 1 with the exact SVD meets (to
// about 0.3%), more steps land below the diagonal, and the randomized SVD of one step a
// little above it.
import { useEffect, useMemo } from 'react';
import { CartesianGrid, ReferenceLine, ResponsiveContainer, Scatter, ScatterChart, Tooltip, XAxis, YAxis } from 'recharts';
import type { LayerRecord, RunSummary } from '../../../src-main/api/contract';
import { ChartCard } from '../../components/ChartCard';
import { axisProps, tooltipProps } from '../../components/chart-style';
import { usePalette } from '../../components/theme';
import { formatNum } from '../../lib/format';
import { predict } from '../../../src-main/engine/rules/planner';
import { niceAxis } from '../../lib/ticks';
import { useConnection } from '../../stores/connection';
import { profileKey, usePlanner } from '../../stores/planner';
import { configValue } from '../../stores/runs';

export function PredictedVsMeasured(props: { run: RunSummary; layers: readonly LayerRecord[] }) {
  const { run, layers } = props;
  const palette = usePalette();
  const online = useConnection((s) => s.status.state === 'open');
  const model = typeof run.record.model.path === 'string' ? run.record.model.path : '';
  const quant = configValue<string>(run, 'quant');
  const block = configValue<number>(run, 'block');
  const rank = configValue<number>(run, 'rank') ?? 0;
  const method = configValue<string>(run, 'method') === 'qlora' ? 'qlora' : 'loftq';
  const request = useMemo(
    () => (model && (quant === 'nf' || quant === 'uniform' || quant === 'ggml') && typeof block === 'number' ? { model, quant: quant as 'nf' | 'uniform' | 'ggml', block } : null),
    [model, quant, block],
  );
  const prepared = usePlanner((s) => (request ? s.profiles[profileKey(request)] : null));
  useEffect(() => {
    if (online && request && prepared === undefined) void usePlanner.getState().load(request);
  }, [online, request, prepared]);

  const points = useMemo(() => {
    if (!prepared) return [];
    const p = predict(
      prepared,
      layers.map((l) => l.name),
      layers.map((l) => l.bits),
      rank,
      method,
    );
    return layers.map((l, k) => ({ name: l.name, predicted: p.errors[k], measured: l.err_init })).filter((d) => Number.isFinite(d.predicted));
  }, [prepared, layers, rank, method]);
  if (!prepared || points.length === 0) return null;
  const hi = Math.max(...points.flatMap((d) => [d.predicted, d.measured]));
  const lo = Math.min(...points.flatMap((d) => [d.predicted, d.measured]));
  const ratio = points.reduce((s, d) => s + d.measured / d.predicted, 0) / points.length;
  const iters = configValue<number>(run, 'iters');
  // One scale on both axes, so the diagonal is the diagonal.
  const axis = niceAxis(lo, hi, 5, 0);
  const predictedLabel = method === 'qlora' ? 'predicted err (QLoRA: ‖W − Q‖)' : 'predicted err (one LoftQ step)';

  return (
    <ChartCard title="Predicted vs measured err_init" fileBase={`${run.name}-predicted`} data={() => ({ columns: ['matrix', 'predicted_t1', 'measured'], rows: points.map((d) => [d.name, d.predicted, d.measured]) })}>
      <ResponsiveContainer width="100%" height={260}>
        <ScatterChart margin={{ top: 8, right: 16, bottom: 20, left: 16 }}>
          <CartesianGrid stroke={palette.grid} />
          <XAxis type="number" dataKey="predicted" name="predicted" domain={axis.domain} ticks={axis.ticks} tickFormatter={axis.format} {...axisProps(palette)} label={{ value: predictedLabel, position: 'insideBottom', offset: -12, fill: palette.muted, fontSize: 11 }} />
          <YAxis type="number" dataKey="measured" name="measured" domain={axis.domain} ticks={axis.ticks} tickFormatter={axis.format} width={64} {...axisProps(palette)} label={{ value: 'measured err_init', angle: -90, position: 'insideLeft', fill: palette.muted, fontSize: 11, style: { textAnchor: 'middle' } }} />
          <Tooltip {...tooltipProps(palette)} formatter={(v) => formatNum(v)} />
          <ReferenceLine segment={[{ x: lo, y: lo }, { x: hi, y: hi }]} stroke={palette.muted} strokeDasharray="4 3" />
          <Scatter data={points} fill={palette.series[0]} isAnimationActive={false} />
        </ScatterChart>
      </ResponsiveContainer>
      <p className="small muted" style={{ margin: 0 }}>
        Each dot a matrix; on the dashed line the run measured what the planner predicted. Mean measured / predicted: {ratio.toFixed(4)}
        {method === 'qlora' ? ' (QLoRA: Q alone, predicted exactly).' : ` (T = ${String(iters ?? '–')}: more steps land below the line).`}
      </p>
    </ChartCard>
  );
}
