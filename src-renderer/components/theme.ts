// The OS colour scheme, and the chart palette that matches styles.css in each scheme
// (charts get concrete colours so that saved PNGs look like the screen).
import { useSyncExternalStore } from 'react';
import { SERIES } from '../lib/color';

const QUERY = '(prefers-color-scheme: dark)';

function subscribe(onChange: () => void): () => void {
  if (typeof matchMedia !== 'function') return () => undefined;
  const mq = matchMedia(QUERY);
  mq.addEventListener('change', onChange);
  return () => mq.removeEventListener('change', onChange);
}

function isDark(): boolean {
  return typeof matchMedia === 'function' && matchMedia(QUERY).matches;
}

export interface Palette {
  dark: boolean;
  bg: string;
  surface: string;
  fg: string;
  muted: string;
  grid: string;
  accent: string;
  series: readonly string[];
  /** QLoRA's error (err_q) and the init error (err_init) in bar charts. */
  errQ: string;
  errInit: string;
}

const LIGHT: Palette = {
  dark: false,
  bg: '#ffffff',
  surface: '#ffffff',
  fg: '#1b1f24',
  muted: '#57606a',
  grid: '#d8dee4',
  accent: '#1f6feb',
  series: SERIES,
  errQ: '#E69F00',
  errInit: '#0072B2',
};

const DARK: Palette = {
  dark: true,
  bg: '#1a1e23',
  surface: '#1a1e23',
  fg: '#e6e9ed',
  muted: '#9ba5b0',
  grid: '#343b44',
  accent: '#4c93ff',
  series: ['#56B4E9', '#E69F00', '#009E73', '#CC79A7', '#D55E00', '#F0E442', '#0072B2', '#999999'],
  errQ: '#E69F00',
  errInit: '#56B4E9',
};

export function usePalette(): Palette {
  const dark = useSyncExternalStore(subscribe, isDark, () => false);
  return dark ? DARK : LIGHT;
}
