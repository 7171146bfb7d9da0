// Saving chart data and pictures: CSV text and PNG rendered from a chart's SVG.

export type CsvCell = string | number | boolean | null | undefined;

export function toCsv(columns: readonly string[], rows: readonly (readonly CsvCell[])[]): string {
  const cell = (v: CsvCell) => {
    if (v === null || v === undefined) return '';
    const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns, ...rows].map((r) => r.map(cell).join(',')).join('\n') + '\n';
}

export function downloadBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function downloadText(text: string, filename: string, type = 'text/csv;charset=utf-8'): void {
  downloadBlob(new Blob([text], { type }), filename);
}

/** A file name from free text (run names may hold slashes). */
export function safeFilename(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'chart';
}

const STYLE_PROPS = [
  'fill',
  'fill-opacity',
  'stroke',
  'stroke-width',
  'stroke-opacity',
  'stroke-dasharray',
  'opacity',
  'font-family',
  'font-size',
  'font-weight',
  'text-anchor',
  'dominant-baseline',
  'visibility',
];

/** Copies the computed presentation styles into the clone, so it renders alone as an image. */
function inlineStyles(source: Element, clone: Element): void {
  const style = getComputedStyle(source);
  const decl = STYLE_PROPS.map((p) => `${p}:${style.getPropertyValue(p)}`)
    .filter((d) => !d.endsWith(':'))
    .join(';');
  if (decl) clone.setAttribute('style', `${decl};${clone.getAttribute('style') ?? ''}`);
  const a = source.children;
  const b = clone.children;
  for (let i = 0; i < a.length && i < b.length; i++) inlineStyles(a[i], b[i]);
}

export interface PngExtras {
  title?: string;
  legend?: readonly { name: string; color: string }[];
  background: string;
  foreground: string;
}

/** Renders an SVG element (with a title above and a legend below) to a PNG at 2× scale. */
export async function svgToPng(svg: SVGSVGElement, extras: PngExtras, scale = 2): Promise<Blob> {
  const box = svg.getBoundingClientRect();
  const width = Math.max(1, Math.round(box.width));
  const height = Math.max(1, Math.round(box.height));
  const clone = svg.cloneNode(true) as SVGSVGElement;
  inlineStyles(svg, clone);
  clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  clone.setAttribute('width', String(width));
  clone.setAttribute('height', String(height));
  const text = new XMLSerializer().serializeToString(clone);
  const url = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml;charset=utf-8' }));
  try {
    const img = await new Promise<HTMLImageElement>((resolve, reject) => {
      const im = new Image();
      im.onload = () => resolve(im);
      im.onerror = () => reject(new Error('the chart could not be drawn as an image'));
      im.src = url;
    });
    const font = getComputedStyle(svg).fontFamily || 'sans-serif';
    const titleH = extras.title ? 28 : 0;
    const legendH = extras.legend && extras.legend.length > 0 ? 24 : 0;
    const pad = 12;
    const canvas = document.createElement('canvas');
    canvas.width = (width + 2 * pad) * scale;
    canvas.height = (height + titleH + legendH + 2 * pad) * scale;
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2D canvas available');
    ctx.scale(scale, scale);
    ctx.fillStyle = extras.background;
    ctx.fillRect(0, 0, width + 2 * pad, height + titleH + legendH + 2 * pad);
    ctx.fillStyle = extras.foreground;
    ctx.textBaseline = 'middle';
    if (extras.title) {
      ctx.font = `600 14px ${font}`;
      ctx.fillText(extras.title, pad, pad + titleH / 2);
    }
    ctx.drawImage(img, pad, pad + titleH, width, height);
    if (legendH) {
      ctx.font = `12px ${font}`;
      let x = pad;
      const y = pad + titleH + height + legendH / 2;
      for (const item of extras.legend ?? []) {
        ctx.fillStyle = item.color;
        ctx.fillRect(x, y - 5, 10, 10);
        ctx.fillStyle = extras.foreground;
        ctx.fillText(item.name, x + 14, y);
        x += 14 + ctx.measureText(item.name).width + 16;
      }
    }
    return await new Promise<Blob>((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the PNG could not be encoded'))), 'image/png'),
    );
  } finally {
    URL.revokeObjectURL(url);
  }
}
