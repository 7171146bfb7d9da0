import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startStores } from '../../stores/start';
import { useJobs } from '../../stores/jobs';
import { useModel } from '../../stores/model';
import { usePlanner } from '../../stores/planner';
import { DEFAULT_FORM, useQuantize } from '../../stores/quantize';
import { demoSummary, fakeApi } from '../../test/fake-api';
import { QuantizeView } from './QuantizeView';

function bitsMapText(): string {
  const dt = screen.getByText('--bits-map');
  return dt.nextElementSibling?.textContent ?? '';
}

function statValue(label: string): string {
  const l = screen.getByText((_, el) => el?.classList.contains('label') === true && el.textContent === label);
  return l.parentElement?.querySelector('.value')?.textContent ?? '';
}

describe('Quantize view', () => {
  let stop: () => void;
  let api: ReturnType<typeof fakeApi>['api'];
  beforeEach(() => {
    ({ api } = fakeApi());
    stop = startStores(api);
    useModel.setState({ summary: demoSummary(), path: '/demo' });
    useQuantize.setState({ form: DEFAULT_FORM, jobId: null, error: null, submitting: false });
    useJobs.setState({ jobs: {}, order: [], progress: {}, dismissed: {} });
  });
  afterEach(() => {
    cleanup();
    stop();
  });

  it('turns grid clicks into the bits-map and updates the estimate live', async () => {
    render(<QuantizeView />);
    fireEvent.click(screen.getByRole('button', { name: '2-bit' }));
    expect(bitsMapText()).toMatch(/none/);
    expect(statValue('Average bits / weight')).toBe('2.500');

    // One cell: 2 → 3 bits.
    const grid = screen.getByRole('group', { name: 'Bits per matrix' });
    fireEvent.click(within(grid).getByRole('button', { name: /^layer 3 down_proj: 2 bits/ }));
    expect(bitsMapText()).toBe('model.layers.3.mlp.down_proj=3');
    expect(Number(statValue('Average bits / weight'))).toBeGreaterThan(2.5);

    // The whole of layer 0: → 3 bits; the paper's preset on top (first 2 layers at 4).
    fireEvent.click(within(grid).getByRole('button', { name: /^all of layer 0/ }));
    expect(bitsMapText()).toBe('layers:0=3,model.layers.3.mlp.down_proj=3');
    fireEvent.click(screen.getByRole('checkbox', { name: /First/ }));
    fireEvent.change(screen.getByRole('spinbutton', { name: 'Number of first layers' }), { target: { value: '2' } });
    expect(bitsMapText()).toBe('first:2=4,layers:0=3,model.layers.3.mlp.down_proj=3');

    fireEvent.click(screen.getByRole('button', { name: 'Reset grid' }));
    expect(bitsMapText()).toBe('first:2=4');
    // 2 of 4 layers at 4 bits (+0.5 absmax), 2 at 2 bits.
    expect(statValue('Average bits / weight')).toBe('3.500');

    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: /^Run$/ }));
    });
    expect(api.startQuantize).toHaveBeenCalledWith(
      expect.objectContaining({ model: '/demo', method: 'loftq', bits: 2, bitsMap: 'first:2=4', rank: 16, alpha: 16, iters: 5, block: 64, targets: 'all-linear', name: 'loftq-2bit-first2-r16' }),
    );
  });

  it('recomputes the adapter size with the rank and blocks bad input', () => {
    render(<QuantizeView />);
    const adapter = () => statValue('Adapter');
    const before = adapter();
    fireEvent.change(screen.getByLabelText('Rank r'), { target: { value: '32' } });
    expect(adapter()).not.toBe(before);
    fireEvent.change(screen.getByLabelText('Rank r'), { target: { value: '0' } });
    expect(screen.getByRole('alert').textContent).toBe('a positive whole number');
    expect((screen.getByRole('button', { name: /^Run$/ }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('limits the targets to the chosen modules', async () => {
    render(<QuantizeView />);
    for (const m of ['k_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']) fireEvent.click(screen.getByRole('checkbox', { name: m }));
    const grid = screen.getByRole('group', { name: 'Bits per matrix' });
    expect(within(grid).queryByRole('button', { name: /down_proj/ })).toBeNull();
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: /^Run$/ }));
    });
    expect(api.startQuantize).toHaveBeenCalledWith(expect.objectContaining({ targets: 'q_proj,v_proj' }));
  });

  it('offers the device, says why there is no GPU, and passes the choice with the request', async () => {
    render(<QuantizeView />);
    // startStores fetched info(): the fake engine has no GPU.
    const select = (await screen.findByLabelText('Device')) as HTMLSelectElement;
    await screen.findByText(/No GPU: the CUDA addon is not built/);
    expect([...select.options].map((o) => o.textContent)).toEqual(['Auto (CPU here)', 'CPU', 'GPU (not available)']);
    fireEvent.change(select, { target: { value: 'cpu' } });
    expect(screen.getByText(/--device cpu/)).toBeTruthy();
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: /^Run$/ }));
    });
    expect(api.startQuantize).toHaveBeenCalledWith(expect.objectContaining({ device: 'cpu' }));
  });

  it("offers llama.cpp's q4_0/q8_0: block 32, 4.5 bits per weight at 4 bits, and catches 2-bit matrices", async () => {
    render(<QuantizeView />);
    fireEvent.change(screen.getByLabelText('Quantizer'), { target: { value: 'ggml' } });
    expect((screen.getByLabelText('Block size') as HTMLInputElement).value).toBe('32');
    // 4 bits + one fp16 scale per 32 weights.
    expect(statValue('Average bits / weight')).toBe('4.500');
    expect(screen.getByText(/--quant q4_0 --block 32/)).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Block size'), { target: { value: '64' } });
    expect(screen.getByRole('alert').textContent).toMatch(/blocks of 32/);
    fireEvent.change(screen.getByLabelText('Block size'), { target: { value: '32' } });
    fireEvent.click(screen.getByRole('button', { name: '2-bit' }));
    expect(screen.getByRole('alert').textContent).toMatch(/4 or 8 bits/);
    expect((screen.getByRole('button', { name: /^Run$/ }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: '8-bit' }));
    expect(screen.queryByRole('alert')).toBeNull();
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: /^Run$/ }));
    });
    expect(api.startQuantize).toHaveBeenCalledWith(expect.objectContaining({ quant: 'ggml', bits: 8, block: 32 }));
  });

  it('catches what the engine would refuse, in its own words, and shows the scaling alpha implies', () => {
    render(<QuantizeView />);
    expect(screen.getByText('scaling s = α/r = 1')).toBeTruthy();
    fireEvent.change(screen.getByLabelText('LoRA alpha'), { target: { value: '32' } });
    expect(screen.getByText('scaling s = α/r = 2')).toBeTruthy();
    fireEvent.click(screen.getByRole('checkbox', { name: /rsLoRA/ }));
    expect(screen.getByText('scaling s = α/√r = 8')).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Rank r'), { target: { value: '999' } });
    expect(screen.getByRole('alert').textContent).toMatch(/^at most \d+: layer \d+\.\w+\.\w+ is \d+ × \d+$/);
    expect(screen.getByRole('alert').textContent).not.toMatch(/--/);
    expect((screen.getByRole('button', { name: /^Run$/ }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(screen.getByLabelText('Rank r'), { target: { value: '16' } });
    fireEvent.change(screen.getByLabelText('Iterations T'), { target: { value: '500' } });
    expect(screen.getByRole('alert').textContent).toBe('at most 100: the error stops falling long before');
    fireEvent.change(screen.getByLabelText('Iterations T'), { target: { value: '40' } });
    expect(screen.getByText(/past about 10 steps/)).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Block size'), { target: { value: '100' } });
    expect(screen.getByText(/does not divide .*matrices: their last block is shorter/)).toBeTruthy();
    expect((screen.getByRole('button', { name: /^Run$/ }) as HTMLButtonElement).disabled).toBe(false);
  });

  /** A profile where err_sq at b bits is 100/4^b·(1 + k/28) and σᵢ² halves: rank and bits both lower LoftQ's prediction. */
  async function withProfile(): Promise<void> {
    const summary = demoSummary();
    const profile = {
      format: 'loftq-profile/1' as const,
      model: { path: '/demo', identity: 'x' },
      quant: 'nf',
      block: 64,
      max_rank: 64,
      seconds: 1,
      matrices: summary.targets.map((t, k) => ({
        name: t.name,
        shape: t.shape,
        w_sq: 100,
        bits: Object.fromEntries([2, 3, 4, 8].map((b) => [String(b), { err_sq: (100 / 4 ** b) * (1 + k / 28), sv: Array.from({ length: 64 }, (_, i) => Math.sqrt(((100 / 4 ** b) * (1 + k / 28)) / 2 ** (i + 2))) }])),
      })),
    };
    (api.getProfile as ReturnType<typeof vi.fn>).mockResolvedValue(profile);
    usePlanner.setState({ profiles: {}, loading: {}, jobs: {}, error: null });
    render(<QuantizeView />);
    await screen.findByText(/^Predicted mean err/);
  }
  const mean = () => Number(statValue(screen.getByText(/^Predicted mean err/).textContent ?? ''));
  const budgetField = () => screen.getByLabelText(/^Budget: average bits/);

  it('planner: offers to profile the model, then predicts the error as bits and rank change, and allocates bits for a budget', async () => {
    render(<QuantizeView />);
    const panel = await screen.findByRole('region', { name: 'Planner' });
    const profileButton = await within(panel).findByRole('button', { name: 'Profile this model' });
    await act(async () => {
      fireEvent.click(profileButton);
    });
    expect(api.startProfile).toHaveBeenCalledWith({ model: '/demo', quant: 'nf', block: 64, maxRank: 64 });
    cleanup();

    await withProfile();
    const at16 = mean();
    fireEvent.change(screen.getByLabelText('Rank r'), { target: { value: '4' } });
    expect(mean()).toBeGreaterThan(at16);
    fireEvent.click(screen.getByRole('button', { name: '2-bit' }));
    const at2 = mean();
    expect(at2).toBeGreaterThan(at16);
    expect(screen.getByRole('img', { name: /Predicted error heatmap/ })).toBeTruthy();
    // Budget: below the floor (everything at 2 bits, plus the rank-4 adapter) is refused with the
    // range; one bit above it moves matrices above 2 bits and lowers the predicted error.
    fireEvent.change(budgetField(), { target: { value: '3' } });
    expect(screen.getByRole('alert').textContent).toMatch(/^outside what rank 4 can reach: 3\.\d\d to 9\.\d\d bits \/ weight$/);
    const floor = Number(/reach: ([\d.]+)/.exec(screen.getByRole('alert').textContent ?? '')![1]);
    fireEvent.change(budgetField(), { target: { value: String(floor + 1) } });
    fireEvent.click(screen.getByRole('button', { name: 'Allocate bits' }));
    expect(mean()).toBeLessThan(at2);
    // The codes and scales alone (the estimate) stay within the budget minus the adapter's share.
    expect(Number(statValue('Average bits / weight'))).toBeLessThanOrEqual(floor + 1 - (floor - 2.5) + 1e-3);
    // The same budget in MiB of quantized matrices and adapter.
    fireEvent.click(screen.getByRole('button', { name: 'MiB' }));
    fireEvent.change(screen.getByLabelText(/Budget: MiB/), { target: { value: '0.01' } });
    expect(screen.getByRole('alert').textContent).toMatch(/^outside what rank 4 can reach: [\d.]+ to [\d.]+ MiB$/);
  });

  it('planner: refuses a budget above what the most bits reach (100 bits per weight), naming the range', async () => {
    await withProfile();
    fireEvent.change(budgetField(), { target: { value: '100' } });
    expect(screen.getByRole('alert').textContent).toMatch(/can reach: \d\.\d\d to \d+\.\d\d bits \/ weight$/);
    expect((screen.getByRole('button', { name: 'Allocate bits' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it("planner: predicts QLoRA by ‖W − Q‖ (B = 0), which the rank does not change, and does not choose a rank for it", async () => {
    await withProfile();
    fireEvent.click(screen.getByRole('button', { name: '2-bit' }));
    const loftq = mean();
    fireEvent.click(within(screen.getByRole('group', { name: 'Method' })).getByRole('button', { name: 'QLoRA' }));
    expect(screen.getByText(/^Predicted mean err \(QLoRA\)/)).toBeTruthy();
    // Mean over the 28 matrices of √(err_sq/w_sq) = √((1/16)(1 + k/28)).
    const expected = Array.from({ length: 28 }, (_, k) => Math.sqrt((1 / 16) * (1 + k / 28))).reduce((a, b) => a + b, 0) / 28;
    expect(mean()).toBeCloseTo(expected, 3);
    expect(mean()).toBeGreaterThan(loftq);
    fireEvent.change(screen.getByLabelText('Rank r'), { target: { value: '4' } });
    expect(mean()).toBeCloseTo(expected, 3);
    expect((screen.getByRole('checkbox', { name: /also choose the rank/ }) as HTMLInputElement).disabled).toBe(true);
    expect(screen.getByText(/err = ‖W − Q‖ \/ ‖W‖: QLoRA starts the adapter at B = 0/)).toBeTruthy();
  });

  it('planner: choosing the rank keeps s = α/r, or sets α = r, and says which', async () => {
    await withProfile();
    fireEvent.change(screen.getByLabelText('LoRA alpha'), { target: { value: '32' } }); // s = 2 at r = 16
    fireEvent.click(screen.getByRole('checkbox', { name: /also choose the rank/ }));
    fireEvent.change(budgetField(), { target: { value: '4' } });
    fireEvent.click(screen.getByRole('button', { name: 'Allocate bits and rank' }));
    const rank = Number((screen.getByLabelText('Rank r') as HTMLInputElement).value);
    expect([1, 2, 4, 8, 16, 32, 64]).toContain(rank);
    expect(Number((screen.getByLabelText('LoRA alpha') as HTMLInputElement).value)).toBe(2 * rank);
    expect(screen.getByText('scaling s = α/r = 2')).toBeTruthy();
    expect(screen.getByText(/α set to \d+, keeping s = 2/)).toBeTruthy();

    fireEvent.click(screen.getByRole('button', { name: /^α = r/ }));
    fireEvent.change(budgetField(), { target: { value: '3.5' } });
    fireEvent.click(screen.getByRole('button', { name: 'Allocate bits and rank' }));
    const rank2 = Number((screen.getByLabelText('Rank r') as HTMLInputElement).value);
    expect(Number((screen.getByLabelText('LoRA alpha') as HTMLInputElement).value)).toBe(rank2);
    expect(screen.getByText(/α = r, so s = 1/)).toBeTruthy();
  });

  it('keeps the bit grid with the model it was made for: the next model starts without it', async () => {
    render(<QuantizeView />);
    fireEvent.click(screen.getByRole('button', { name: '2-bit' }));
    const grid = screen.getByRole('group', { name: 'Bits per matrix' });
    fireEvent.click(within(grid).getByRole('button', { name: /^layer 3 k_proj: 2 bits/ }));
    expect(bitsMapText()).toBe('model.layers.3.self_attn.k_proj=3');
    // Another model (16 layers) opens: no map carried over, and its runs ask for none.
    act(() => useModel.setState({ summary: demoSummary('/models/other', 16), path: '/models/other' }));
    expect(bitsMapText()).toMatch(/none/);
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: /^Run$/ }));
    });
    expect(api.startQuantize).toHaveBeenLastCalledWith(expect.objectContaining({ model: '/models/other', bitsMap: undefined }));
    // Back to the first model: its grid is still its own.
    act(() => useModel.setState({ summary: demoSummary(), path: '/demo' }));
    expect(bitsMapText()).toBe('model.layers.3.self_attn.k_proj=3');
  });
});
