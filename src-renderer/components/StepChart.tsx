// A per-step line chart (training loss, perplexity) with one series per run. All of them share
// one syncId, so hovering a step shows it on every such chart at once.
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { axisProps, legendProps, numberTick, tooltipProps } from './chart-style';
import type { usePalette } from './theme';
import { formatNum } from '../lib/format';

export interface StepSeries {
  key: string;
  color: string;
  run: { name: string };
}

/** Below a loss or a perplexity there is nothing: the axis starts at most at 0. */
const floorAtZero = (min: number) => Math.max(0, min - 0.05 * Math.abs(min));

export function StepChart(props: { data: Record<string, number>[]; series: StepSeries[]; log: boolean; palette: ReturnType<typeof usePalette>; dots: boolean; yLabel: string }) {
  const { data, series, log, palette, dots, yLabel } = props;
  return (
    <ResponsiveContainer width="100%" height={280}>
      <LineChart data={data} margin={{ top: 8, right: 16, bottom: 20, left: 16 }} syncId="steps">
        <CartesianGrid stroke={palette.grid} />
        <XAxis dataKey="step" {...axisProps(palette)} label={{ value: 'optimizer step', position: 'insideBottom', offset: -12, fill: palette.muted, fontSize: 11 }} />
        <YAxis
          {...axisProps(palette)}
          scale={log ? 'log' : 'auto'}
          domain={log ? ['auto', 'auto'] : [floorAtZero, 'auto']}
          allowDataOverflow
          tickFormatter={numberTick}
          width={64}
          label={{ value: yLabel, angle: -90, position: 'insideLeft', fill: palette.muted, fontSize: 11, style: { textAnchor: 'middle' } }}
        />
        <Tooltip {...tooltipProps(palette)} formatter={(v) => formatNum(v)} />
        <Legend {...legendProps(palette)} verticalAlign="top" />
        {series.map((s) => (
          <Line key={s.key} type="monotone" dataKey={s.key} name={s.run.name} stroke={s.color} dot={dots} isAnimationActive={false} connectNulls />
        ))}
      </LineChart>
    </ResponsiveContainer>
  );
}
