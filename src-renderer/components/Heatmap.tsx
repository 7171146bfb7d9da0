// A layer × module heatmap drawn as one SVG (fast for 500+ cells, and saved as PNG like the
// charts). Click a cell, or focus the map and use the arrow keys, to select a matrix.
import { memo, useId, useMemo, type KeyboardEvent, type MouseEvent, type ReactNode } from 'react';
import { textOn, viridis, VIRIDIS_STOPS } from '../lib/color';
import { formatNum } from '../lib/format';
import { gridAxes, moduleLabel } from '../lib/targets';
import { usePalette } from './theme';

export interface HeatCell {
  name: string;
  layer: number;
  module: string;
  value: number;
}

export interface HeatmapProps {
  cells: readonly HeatCell[];
  valueLabel: string;
  selected?: string | null;
  onSelect?: (name: string) => void;
  /** Colour domain; defaults to the cells' min and max. */
  domain?: [number, number];
  label: string;
}

interface Layout {
  layers: number[];
  modules: string[];
  cellW: number;
  cellH: number;
  left: number;
  top: number;
  width: number;
  height: number;
  lo: number;
  hi: number;
  byKey: Map<string, HeatCell>;
}

/** About how wide a line of 11 px text is (the SVG is laid out before anything is measured). */
const textWidth = (text: string) => Math.ceil(text.length * 6.6);

function layoutOf(cells: readonly HeatCell[], valueLabel: string, domain?: [number, number]): Layout {
  const { layers, modules } = gridAxes(cells);
  const cellW = 64;
  const cellH = layers.length <= 16 ? 24 : layers.length <= 40 ? 16 : 11;
  const left = 44;
  const top = 22;
  const finite = cells.map((c) => c.value).filter(Number.isFinite);
  let lo = domain?.[0] ?? Math.min(...finite);
  let hi = domain?.[1] ?? Math.max(...finite);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (hi - lo < 1e-12) hi = lo + 1e-12;
  const gridH = layers.length * cellH;
  const byKey = new Map(cells.map((c) => [`${c.layer}|${c.module}`, c]));
  // The colour bar's column: the bar and its tick labels, or the value's name under it, whichever is wider.
  const ticks = [lo, (lo + hi) / 2, hi].map((v) => textWidth(formatNum(v, 3)));
  const legendW = 18 + Math.max(20 + Math.max(...ticks), textWidth(valueLabel)) + 4;
  return { layers, modules, cellW, cellH, left, top, width: left + modules.length * cellW + legendW, height: top + Math.max(gridH, Math.min(220, Math.max(100, gridH)) + 24) + 6, lo, hi, byKey };
}

const Cells = memo(function Cells({ layout, fg }: { layout: Layout; fg: string }) {
  const { layers, modules, cellW, cellH, left, top, lo, hi, byKey } = layout;
  const showText = cellH >= 16;
  const labelEvery = cellH >= 16 ? 1 : Math.ceil(14 / cellH);
  const out: ReactNode[] = [];
  modules.forEach((m, j) => {
    out.push(
      <text key={`h${m}`} x={left + j * cellW + cellW / 2} y={top - 7} textAnchor="middle" fontSize={11} fill={fg}>
        {moduleLabel(m)}
      </text>,
    );
  });
  layers.forEach((layer, i) => {
    const y = top + i * cellH;
    if (i % labelEvery === 0) {
      out.push(
        <text key={`l${layer}`} x={left - 6} y={y + cellH / 2} textAnchor="end" dominantBaseline="central" fontSize={11} fill={fg}>
          {layer}
        </text>,
      );
    }
    modules.forEach((m, j) => {
      const c = byKey.get(`${layer}|${m}`);
      if (!c) return;
      const t = (c.value - lo) / (hi - lo);
      const x = left + j * cellW;
      out.push(
        <rect key={c.name} data-name={c.name} x={x} y={y} width={cellW - 1} height={cellH - 1} fill={viridis(t)}>
          <title>{`${c.name}\n${formatNum(c.value)}`}</title>
        </rect>,
      );
      if (showText) {
        out.push(
          <text
            key={`t${c.name}`}
            x={x + cellW / 2}
            y={y + cellH / 2}
            textAnchor="middle"
            dominantBaseline="central"
            fontSize={10}
            fill={textOn(t)}
            pointerEvents="none"
          >
            {formatNum(c.value, 3)}
          </text>,
        );
      }
    });
  });
  return <>{out}</>;
});

export function Heatmap(props: HeatmapProps) {
  const palette = usePalette();
  const gradientId = `heat${useId().replace(/[^A-Za-z0-9]/g, '')}`;
  const layout = useMemo(() => layoutOf(props.cells, props.valueLabel, props.domain), [props.cells, props.valueLabel, props.domain]);
  const { layers, modules, cellW, cellH, left, top, lo, hi } = layout;
  const selected = props.selected ? props.cells.find((c) => c.name === props.selected) : undefined;
  const legendX = left + modules.length * cellW + 18;
  const legendH = Math.min(220, Math.max(100, layers.length * cellH));

  const onClick = (e: MouseEvent<SVGSVGElement>) => {
    const name = (e.target as Element).getAttribute?.('data-name');
    if (name) props.onSelect?.(name);
  };
  const onKey = (e: KeyboardEvent<HTMLDivElement>) => {
    const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const mv = moves[e.key];
    if (!mv || !props.onSelect || props.cells.length === 0) return;
    e.preventDefault();
    let li = selected ? layers.indexOf(selected.layer) : 0;
    let mi = selected ? modules.indexOf(selected.module) : 0;
    if (selected) {
      li = Math.min(layers.length - 1, Math.max(0, li + mv[0]));
      mi = Math.min(modules.length - 1, Math.max(0, mi + mv[1]));
    }
    const cell = layout.byKey.get(`${layers[li]}|${modules[mi]}`);
    if (cell) props.onSelect(cell.name);
  };

  if (props.cells.length === 0) return <div className="empty">No matrices yet.</div>;
  return (
    <div className="heatmap" tabIndex={0} role="group" aria-label={`${props.label}. Arrow keys select a matrix.`} onKeyDown={onKey}>
      {/* Narrower than its drawing, the map scales down to fit (its legend is never cut off). */}
      <svg width={layout.width} height={layout.height} viewBox={`0 0 ${layout.width} ${layout.height}`} style={{ maxWidth: '100%', height: 'auto' }} onClick={onClick} role="img" aria-label={`${props.label}: ${layers.length} layers × ${modules.length} modules`}>
        <defs>
          <linearGradient id={gradientId} x1="0" y1="1" x2="0" y2="0">
            {VIRIDIS_STOPS.map((c, i) => (
              <stop key={c} offset={i / (VIRIDIS_STOPS.length - 1)} stopColor={c} />
            ))}
          </linearGradient>
        </defs>
        <Cells layout={layout} fg={palette.fg} />
        {selected && (
          <rect
            x={left + modules.indexOf(selected.module) * cellW - 1.5}
            y={top + layers.indexOf(selected.layer) * cellH - 1.5}
            width={cellW + 2}
            height={cellH + 2}
            fill="none"
            stroke={palette.fg}
            strokeWidth={2.5}
            pointerEvents="none"
          />
        )}
        <text x={legendX} y={top + legendH + 16} fontSize={11} fill={palette.fg}>
          {props.valueLabel}
        </text>
        <rect x={legendX} y={top} width={14} height={legendH} fill={`url(#${gradientId})`} />
        {[0, 0.5, 1].map((f) => (
          <text key={f} x={legendX + 20} y={top + legendH * (1 - f)} dominantBaseline="central" fontSize={11} fill={palette.fg}>
            {formatNum(lo + (hi - lo) * f, 3)}
          </text>
        ))}
      </svg>
      <div className="sr-only" aria-live="polite">
        {selected ? `${selected.name}: ${props.valueLabel} ${formatNum(selected.value)}` : ''}
      </div>
    </div>
  );
}
