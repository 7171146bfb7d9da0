// Axis ticks people read at a glance: steps of 1, 2 or 5 × 10^k over the data's range, the
// domain widened to the outer ticks, and every label with the same, fewest decimals that tell
// the ticks apart (0.05, 0.1, 0.15 — never 0.05299).

export interface NiceAxis {
  domain: [number, number];
  ticks: number[];
  /** Labels every tick with the decimals its step needs. */
  format: (v: unknown) => string;
}

/** About `count` ticks covering [lo, hi] (a flat range gets a small span around it). */
export function niceAxis(lo: number, hi: number, count = 5, floor?: number): NiceAxis {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { domain: [0, 1], ticks: [0, 0.5, 1], format: fixed(1) };
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) {
    const pad = Math.abs(hi) > 0 ? Math.abs(hi) * 0.05 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * 0.999) ?? 10 * mag;
  let start = Math.floor(lo / step + 1e-9) * step;
  if (floor !== undefined && start < floor) start = floor;
  const end = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = start; v <= end + step * 1e-6; v += step) ticks.push(Number(v.toPrecision(12)));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (step / mag === 2.5 ? 1 : 0));
  return { domain: [ticks[0], ticks[ticks.length - 1]], ticks, format: fixed(decimals) };
}

function fixed(decimals: number): (v: unknown) => string {
  return (v) => (typeof v === 'number' && Number.isFinite(v) ? (v === 0 ? '0' : v.toFixed(Math.min(decimals, 12))) : String(v));
}

/** Whole-number ticks (steps, indices) of 1, 2 or 5 × 10^k from `from` to at least `to`. */
export function integerTicks(from: number, to: number, count = 8): number[] {
  const span = Math.max(1, to - from);
  const raw = span / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(Math.max(1, raw)));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag);
  const ticks: number[] = [];
  for (let v = Math.ceil(from / step) * step; v <= to; v += step) ticks.push(v);
  if (ticks[0] !== from) ticks.unshift(from);
  return ticks;
}
