// A perceptually uniform sequential scale (viridis) for heatmaps, readable in both themes.

const VIRIDIS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'];

const STOPS = VIRIDIS.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));

/** The colour of t in [0, 1] (clamped; NaN gives grey). */
export function viridis(t: number): string {
  if (!Number.isFinite(t)) return '#888888';
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const c = STOPS[i].map((v, k) => Math.round(v + (STOPS[i + 1][k] - v) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** Black or white text, whichever reads better on viridis(t). */
export function textOn(t: number): string {
  return t > 0.55 ? '#111111' : '#ffffff';
}

export const VIRIDIS_STOPS = VIRIDIS;

/** Distinct series colours (Okabe–Ito, colour-blind safe), for lines and bars. */
export const SERIES = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#D55E00', '#56B4E9', '#F0E442', '#999999'];
