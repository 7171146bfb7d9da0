// Shared recharts props so every chart reads the same in both themes.
import type { Palette } from './theme';

export function axisProps(p: Palette) {
  return {
    stroke: p.muted,
    tick: { fill: p.muted, fontSize: 11 },
    tickLine: { stroke: p.grid },
  };
}

export function tooltipProps(p: Palette) {
  return {
    contentStyle: { background: p.surface, border: `1px solid ${p.grid}`, borderRadius: 6, color: p.fg, fontSize: 12 },
    labelStyle: { color: p.fg, fontWeight: 600 },
    itemStyle: { color: p.fg },
    cursor: { fill: p.dark ? 'rgba(255,255,255,0.06)' : 'rgba(0,0,0,0.05)', stroke: p.grid },
    isAnimationActive: false,
  };
}

export function legendProps(p: Palette) {
  return { wrapperStyle: { fontSize: 12, color: p.fg } };
}

export function numberTick(v: unknown): string {
  if (typeof v !== 'number') return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1000 || a < 0.001 ? v.toExponential(1) : Number(v.toPrecision(4)).toString();
}
