import { act, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RunDetail } from '../../../src-main/api/contract';
import { useCompare } from '../../stores/compare';
import { useRuns } from '../../stores/runs';
import { mountStores } from '../../test/mount-stores';
import { fakeApi, job, runSummary } from '../../test/fake-api';
import { CompareView, defaultPair, runColors } from './CompareView';
import { differenceCells, sharedDomain } from './CompareHeatmaps';

describe('Compare view: evaluate from the app', () => {
  let stop: () => void;
  let fake: ReturnType<typeof fakeApi>;
  beforeEach(async () => {
    const runs = [runSummary('loftq-2bit'), runSummary('qlora-2bit', { method: 'qlora' })];
    const detail = (name: string): RunDetail => ({
      ...runSummary(name),
      layers: [],
      metrics: [
        { step: 0, split: 'eval', eval_ppl: 1.61, tokens: 500, weights: 'q+lora', protocol: 'rows', seq_len: 128 },
        { step: 0, split: 'eval', eval_ppl: 1.55, tokens: 24004, weights: 'q+lora', data: '/demo-data/eval.txt', seq_len: 128, stride: 64 },
        { step: 0, split: 'eval', eval_ppl: 1.56, tokens: 24004, weights: 'q', data: '/demo-data/eval.txt', seq_len: 128, stride: 64 },
      ],
    });
    let n = 0;
    fake = fakeApi({
      listRuns: vi.fn(async () => runs),
      getRun: vi.fn(async (dir: string) => detail(dir.split('/').pop()!)),
      startEval: vi.fn(async (r) => job({ id: `job-e${++n}`, kind: 'eval', target: r.target, state: 'queued' })),
    });
    useRuns.setState({ runs: [], details: {}, version: 0 });
    useCompare.setState({ selected: [], touched: false });
    stop = await mountStores(fake.api);
  });
  afterEach(() => stop());

  it('evaluates the chosen runs on one text and names the protocol of every perplexity shown', async () => {
    render(<CompareView />);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(50);
    });
    // The summary's perplexities say what they were measured on; the training curve's differ and say so.
    expect(screen.getByText(/Perplexity measured on sliding window 128, stride 64, eval\.txt/)).toBeTruthy();
    expect(screen.getAllByText('1.55 / 1.56 / –')).toHaveLength(2);
    expect(screen.getByText("Measured on training's held-out rows of 128 tokens, no overlap.")).toBeTruthy();

    const start = screen.getByRole('button', { name: 'Evaluate 2 runs' }) as HTMLButtonElement;
    expect(start.disabled).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: 'The demo’s held-out text' }));
    fireEvent.change(screen.getByLabelText('Window (tokens)'), { target: { value: '1' } });
    expect(screen.getByRole('alert').textContent).toMatch(/whole number ≥ 2/);
    fireEvent.change(screen.getByLabelText('Window (tokens)'), { target: { value: '' } });
    await act(async () => {
      fireEvent.click(start);
    });
    expect(fake.api.startEval).toHaveBeenCalledTimes(2);
    expect(fake.api.startEval).toHaveBeenCalledWith({ target: '/runs/loftq-2bit', data: '/demo-data/eval.txt', seqLen: undefined, stride: undefined, device: 'auto' });
    // No GPU in this fake engine: the precision is not asked for and not sent.
    expect((screen.getByLabelText('GPU precision') as HTMLSelectElement).disabled).toBe(true);
    expect(screen.getByRole('list', { name: 'Evaluations' }).textContent).toMatch(/qlora-2bit/);
  });

  it('on an engine with a GPU: auto runs there, and the precision chosen is sent', async () => {
    const gpuInfo = await fake.api.info();
    fake.api.info = vi.fn(async () => ({ ...gpuInfo, device: { kind: 'cuda' as const, name: 'NVIDIA H200', memory_bytes: 143e9, cores: 132, cuda: { available: true, reason: 'NVIDIA H200 answered' } } }));
    stop();
    stop = await mountStores(fake.api);
    render(<CompareView />);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(50);
    });
    expect(screen.getByRole('option', { name: 'Auto (GPU: NVIDIA H200)' })).toBeTruthy();
    const precision = screen.getByLabelText('GPU precision') as HTMLSelectElement;
    expect(precision.disabled).toBe(false);
    fireEvent.change(precision, { target: { value: 'fp32' } });
    fireEvent.click(screen.getByRole('button', { name: 'The demo’s held-out text' }));
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Evaluate 2 runs' }));
    });
    expect(fake.api.startEval).toHaveBeenCalledWith({ target: '/runs/qlora-2bit', data: '/demo-data/eval.txt', seqLen: undefined, stride: undefined, device: 'auto', precision: 'fp32' });
    // On the CPU the precision does not apply.
    fireEvent.change(screen.getByLabelText('Device'), { target: { value: 'cpu' } });
    expect(precision.disabled).toBe(true);
  });
});

describe('Compare: which runs and colours', () => {
  const run = (name: string, created: string, method: string, bits: number, model = '/m/demo') => {
    const r = runSummary(name, { method, bits });
    r.record.created = created;
    r.record.model = { path: model };
    return r;
  };

  it('opens with a like-for-like pair: same model and bits, QLoRA vs LoftQ', () => {
    const runs = [
      run('loftq-4bit', '2026-01-01T00:00:05Z', 'loftq', 4),
      run('loftq-2bit', '2026-01-01T00:00:04Z', 'loftq', 2),
      run('qlora-2bit-other-model', '2026-01-01T00:00:03Z', 'qlora', 2, '/m/other'),
      run('qlora-2bit', '2026-01-01T00:00:02Z', 'qlora', 2),
    ];
    expect(defaultPair(runs)).toEqual(['/runs/qlora-2bit', '/runs/loftq-2bit']);
    // Nothing comparable: the two newest finished runs.
    expect(defaultPair(runs.slice(0, 2))).toEqual(['/runs/loftq-4bit', '/runs/loftq-2bit']);
  });

  it("gives each run one colour, whatever is selected or added later", () => {
    const a = run('a', '2026-01-01T00:00:01Z', 'loftq', 2);
    const b = run('b', '2026-01-01T00:00:02Z', 'qlora', 2);
    const c = run('c', '2026-01-01T00:00:03Z', 'loftq', 4);
    const palette = ['red', 'green', 'blue'];
    const before = runColors([b, a], palette);
    const after = runColors([c, b, a], palette);
    expect(before.get('/runs/a')).toBe('red');
    expect(after.get('/runs/a')).toBe('red');
    expect(after.get('/runs/b')).toBe(before.get('/runs/b'));
    expect(after.get('/runs/c')).toBe('blue');
  });
});

describe('Compare: heatmaps', () => {
  const layer = (name: string, err_init: number) => ({ name, shape: [8, 8] as [number, number], bits: 2, method: 'x', err_q: 0.6, err_init, step_errors: [], residual_top_sv: [], seconds: 0 });
  it('share one colour scale, and the difference map is LoftQ − QLoRA per matrix both have', () => {
    const loftq = { run: runSummary('l', { method: 'loftq' }), layers: [layer('model.layers.0.self_attn.q_proj', 0.4), layer('model.layers.1.self_attn.q_proj', 0.45)] };
    const qlora = { run: runSummary('q', { method: 'qlora' }), layers: [layer('model.layers.0.self_attn.q_proj', 0.58), layer('model.layers.1.self_attn.q_proj', 0.6), layer('model.layers.2.self_attn.q_proj', 0.7)] };
    expect(sharedDomain([loftq, qlora])).toEqual([0.4, 0.7]);
    const d = differenceCells([qlora, loftq]);
    expect(d?.cells.map((c) => [c.layer, Number(c.value.toFixed(6))])).toEqual([
      [0, -0.18],
      [1, -0.15],
    ]);
    expect(differenceCells([loftq])).toBeNull();
  });
});
