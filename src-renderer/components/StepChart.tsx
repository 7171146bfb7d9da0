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

export function StepChart(props: { data: Record<string, number>[]; series: StepSeries[]; log: boolean; palette: ReturnType<typeof usePalette>; dots: boolean }) {
  const { data, series, log, palette, dots } = props;
  return (
    <ResponsiveContainer width="100%" height={280}>
      <LineChart data={data} margin={{ top: 8, right: 16, bottom: 16, left: 8 }} syncId="steps">
        <CartesianGrid stroke={palette.grid} />
        <XAxis dataKey="step" {...axisProps(palette)} />
        <YAxis {...axisProps(palette)} scale={log ? 'log' : 'auto'} domain={['auto', 'auto']} allowDataOverflow tickFormatter={numberTick} width={56} />
        <Tooltip {...tooltipProps(palette)} formatter={(v) => formatNum(v)} />
        <Legend {...legendProps(palette)} />
        {series.map((s) => (
          <Line key={s.key} type="monotone" dataKey={s.key} name={s.run.name} stroke={s.color} dot={dots} isAnimationActive={false} connectNulls />
        ))}
      </LineChart>
    </ResponsiveContainer>
  );
}
