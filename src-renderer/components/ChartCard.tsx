// A chart with its title and "Save PNG" / "Save CSV" buttons: the PNG is the chart's own SVG
// drawn onto a canvas (with the title and legend), the CSV its data.
import { useRef, useState, type ReactNode } from 'react';
import { downloadBlob, downloadText, safeFilename, svgToPng, toCsv, type CsvCell } from '../lib/download';
import { usePalette } from './theme';

export interface ChartData {
  columns: readonly string[];
  rows: readonly (readonly CsvCell[])[];
}

/** The chart's main SVG: the largest one inside (legend icons are small SVGs too). */
function mainSvg(root: HTMLElement): SVGSVGElement | null {
  let best: SVGSVGElement | null = null;
  let bestArea = -1;
  for (const svg of root.querySelectorAll<SVGSVGElement>('svg')) {
    if (svg.parentElement?.closest('svg')) continue;
    const r = svg.getBoundingClientRect();
    const area = r.width * r.height;
    if (area > bestArea) {
      best = svg;
      bestArea = area;
    }
  }
  return best;
}

export function ChartCard(props: {
  title: string;
  /** File names start with this (the run's name, say). */
  fileBase: string;
  data: () => ChartData;
  legend?: readonly { name: string; color: string }[];
  actions?: ReactNode;
  children: ReactNode;
  className?: string;
}) {
  const body = useRef<HTMLDivElement>(null);
  const palette = usePalette();
  const [error, setError] = useState<string | null>(null);
  const base = safeFilename(`${props.fileBase}-${props.title}`);

  const savePng = async () => {
    setError(null);
    const svg = body.current && mainSvg(body.current);
    if (!svg) {
      setError('nothing to save yet');
      return;
    }
    try {
      const blob = await svgToPng(svg, { title: props.title, legend: props.legend, background: palette.surface, foreground: palette.fg });
      downloadBlob(blob, `${base}.png`);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  const saveCsv = () => {
    const d = props.data();
    downloadText(toCsv(d.columns, d.rows), `${base}.csv`);
  };

  return (
    <section className={`panel chart-card ${props.className ?? ''}`} aria-label={props.title}>
      <header>
        <h3>{props.title}</h3>
        {props.actions}
        <div className="row small-buttons">
          <button type="button" onClick={() => void savePng()}>
            Save PNG
          </button>
          <button type="button" onClick={saveCsv}>
            Save CSV
          </button>
        </div>
      </header>
      {error && (
        <div className="note error small" role="alert">
          {error}
        </div>
      )}
      <div className="chart-body" ref={body}>
        {props.children}
      </div>
    </section>
  );
}
