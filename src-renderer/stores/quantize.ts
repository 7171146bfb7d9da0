// The Quantize form: options, the bit grid, and the job it started.
import { create } from 'zustand';
import type { QuantizeRequest } from '../../src-main/api/contract';
import { commonestBits } from '../../src-main/engine/rules/bits-map-encoder';
import { nextBits, pruneOverrides, setOverrides, type BitsGridState, type BitsTarget } from '../lib/bits-map';
import { errorMessage } from '../transport/types';
import { api } from './api';
import { noteJob } from './jobs';

export interface QuantizeForm {
  method: 'qlora' | 'loftq';
  globalBits: number;
  presetOn: boolean;
  firstK: string;
  /** Per-matrix bits set in the grid, for the model `gridModel` (a grid never carries to another model). */
  overrides: Record<string, number>;
  gridModel: string | null;
  rank: string;
  alpha: string;
  iters: string;
  block: string;
  /** ggml: llama.cpp's q4_0 (4-bit) and q8_0 (8-bit), block 32. */
  quant: 'nf' | 'uniform' | 'ggml';
  svd: 'randomized' | 'exact';
  device: 'auto' | 'cpu' | 'cuda';
  rslora: boolean;
  seed: string;
  /** Target modules; null is all-linear. */
  modules: string[] | null;
  name: string;
  /** The user typed a name (otherwise it follows the options). */
  nameTouched: boolean;
}

export const DEFAULT_FORM: QuantizeForm = {
  method: 'loftq',
  globalBits: 4,
  presetOn: false,
  firstK: '4',
  overrides: {},
  gridModel: null,
  rank: '16',
  alpha: '16',
  iters: '5',
  block: '64',
  quant: 'nf',
  svd: 'randomized',
  device: 'auto',
  rslora: false,
  seed: '0',
  modules: null,
  name: '',
  nameTouched: false,
};

export interface Parsed {
  values: { rank: number; alpha: number; iters: number; block: number; firstK: number; seed: number };
  errors: Partial<Record<keyof QuantizeForm, string>>;
}

function int(text: string, min: number): number | null {
  if (!/^\s*\d+\s*$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= min ? n : null;
}

/** The block size of llama.cpp's q4_0 and q8_0. */
export const GGML_BLOCK = 32;
/** Bits llama.cpp's formats have here: q4_0 and q8_0. */
export const GGML_BITS: readonly number[] = [4, 8];

export const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Parses the numeric fields; an error per field that is not valid. */
export function parseForm(f: QuantizeForm): Parsed {
  const errors: Parsed['errors'] = {};
  const rank = int(f.rank, 1);
  if (rank === null) errors.rank = 'a positive whole number';
  const iters = int(f.iters, 1);
  if (iters === null) errors.iters = 'a positive whole number';
  const block = int(f.block, 1);
  if (block === null) errors.block = 'a positive whole number';
  else if (f.quant === 'ggml' && block !== GGML_BLOCK) errors.block = `llama.cpp's q4_0 and q8_0 use blocks of ${GGML_BLOCK}`;
  const firstK = int(f.firstK, 1);
  if (f.presetOn && firstK === null) errors.firstK = 'a positive whole number';
  const seed = int(f.seed, 0);
  if (seed === null) errors.seed = 'a whole number ≥ 0';
  const alpha = Number(f.alpha);
  if (!(alpha > 0) || !Number.isFinite(alpha) || f.alpha.trim() === '') errors.alpha = 'a positive number';
  if (f.modules !== null && f.modules.length === 0) errors.modules = 'choose at least one module';
  return {
    values: { rank: rank ?? 16, alpha: alpha > 0 ? alpha : 16, iters: iters ?? 5, block: block ?? 64, firstK: firstK ?? 0, seed: seed ?? 0 },
    errors,
  };
}

const NO_OVERRIDES: Readonly<Record<string, number>> = Object.freeze({});

/** The grid's overrides for `model`: none when the grid was made for another model. */
export function overridesFor(f: Pick<QuantizeForm, 'overrides' | 'gridModel'>, model: string | null): Readonly<Record<string, number>> {
  return model !== null && f.gridModel === model ? f.overrides : NO_OVERRIDES;
}

/** The bit grid of `model` (the current one, unless another is named). */
export function gridState(f: Pick<QuantizeForm, 'globalBits' | 'presetOn' | 'firstK' | 'overrides' | 'gridModel'>, model: string | null = f.gridModel): BitsGridState {
  const k = int(f.firstK, 1);
  return { globalBits: f.globalBits, firstK: f.presetOn && k !== null ? k : 0, overrides: overridesFor(f, model) };
}

/** A descriptive default run name that no existing run has. */
export function suggestName(f: QuantizeForm, taken: ReadonlySet<string>, model: string | null = f.gridModel): string {
  const g = gridState(f, model);
  const bits = Object.keys(g.overrides).length > 0 ? `${f.globalBits}bit-mixed` : g.firstK > 0 ? `${f.globalBits}bit-first${g.firstK}` : `${f.globalBits}bit`;
  const base = `${f.method}-${bits}-r${f.rank.trim() || '?'}`.replace(/[^A-Za-z0-9._-]/g, '');
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

interface QuantizeStore {
  form: QuantizeForm;
  /** The job the last Run started. */
  jobId: string | null;
  submitting: boolean;
  error: string | null;
  update(patch: Partial<QuantizeForm>): void;
  /** Clicking a cell (or a row / column header) of `model`'s grid: the next bit choice for those matrices. */
  cycle(model: string, targets: readonly BitsTarget[], current: number): void;
  resetGrid(): void;
  /** Bits for every matrix of `model` at once (the planner's allocation): the commonest as the global bits, the rest in the grid. */
  applyBits(model: string, targets: readonly { name: string }[], bits: readonly number[]): void;
  start(request: QuantizeRequest): Promise<void>;
}

export const useQuantize = create<QuantizeStore>((set, get) => ({
  form: DEFAULT_FORM,
  jobId: null,
  submitting: false,
  error: null,
  update(patch) {
    set((s) => {
      const form = { ...s.form, ...patch };
      // llama.cpp's formats have one block size; picking them sets it.
      if (patch.quant === 'ggml' && s.form.quant !== 'ggml') form.block = String(GGML_BLOCK);
      else if (patch.quant && patch.quant !== 'ggml' && s.form.quant === 'ggml' && form.block === String(GGML_BLOCK)) form.block = DEFAULT_FORM.block;
      // Changing the global bits or the preset may make overrides redundant.
      if ('globalBits' in patch || 'presetOn' in patch || 'firstK' in patch) form.overrides = pruneOverrides(gridState(form));
      return { form };
    });
  },
  cycle(model, targets, current) {
    const form = get().form;
    set({ form: { ...form, gridModel: model, overrides: setOverrides(gridState(form, model), targets, nextBits(current)) } });
  },
  resetGrid() {
    set((s) => ({ form: { ...s.form, overrides: {} } }));
  },
  applyBits(model, targets, bits) {
    const globalBits = commonestBits(bits) ?? get().form.globalBits;
    const overrides: Record<string, number> = {};
    targets.forEach((t, i) => {
      if (bits[i] !== globalBits) overrides[t.name] = bits[i];
    });
    set((s) => ({ form: { ...s.form, globalBits, presetOn: false, overrides, gridModel: model } }));
  },
  async start(request) {
    set({ submitting: true, error: null });
    try {
      const job = await api().startQuantize(request);
      noteJob(job);
      set({ submitting: false, jobId: job.id, form: { ...get().form, nameTouched: false, name: '' } });
    } catch (e) {
      set({ submitting: false, error: errorMessage(e) });
    }
  },
}));
