import { act, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RunSummary } from '../../../src-main/api/contract';
import { applyJobEvents, useJobs } from '../../stores/jobs';
import { useNav } from '../../stores/nav';
import { useRuns } from '../../stores/runs';
import { useTrain } from '../../stores/train';
import { mountStores } from '../../test/mount-stores';
import { fakeApi, job, runSummary } from '../../test/fake-api';
import { etaSeconds, TrainView } from './TrainView';

function statValue(label: string): string {
  return screen.getByText(label).parentElement?.querySelector('.value')?.textContent ?? '';
}

describe('Fine-tune view', () => {
  let stop: () => void;
  let fake: ReturnType<typeof fakeApi>;
  let stopped: RunSummary;
  beforeEach(async () => {
    stopped = runSummary('stopped');
    stopped.record.training = {
      status: 'cancelled',
      step: 3,
      steps: 6,
      config: { data: { path: '/data/train.txt', tokens: 1000, sha256: 'ab' }, evalData: null, steps: 6, lr: 0.002, batch: 2, seqLen: 64, warmup: 1, evalEvery: 3 },
      started: '2026-01-01T00:00:00.000Z',
      resumed_from: null,
      last_loss: 1.25,
    };
    fake = fakeApi({ listRuns: vi.fn(async () => [runSummary('fresh'), stopped]) });
    useRuns.setState({ runs: [], details: {}, version: 0 });
    useTrain.setState({ forms: {}, jobId: null, error: null, submitting: false });
    useJobs.setState({ jobs: {}, order: [], progress: {}, dismissed: {} });
    useNav.setState({ view: 'train', run: null });
    stop = await mountStores(fake.api);
  });
  afterEach(() => stop());

  it('starts a fine-tuning with the demo texts and shows its live loss, perplexity and speed', async () => {
    render(<TrainView />);
    fireEvent.click(screen.getByRole('button', { name: 'Use the demo texts' }));
    expect((screen.getByLabelText('Training data') as HTMLInputElement).value).toBe('/demo-data/train.txt');
    expect((screen.getByLabelText('Sequence length') as HTMLInputElement).value).toBe('128');
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Start fine-tuning' }));
    });
    expect(fake.api.startTrain).toHaveBeenCalledWith({ run: '/runs/fresh', data: '/demo-data/train.txt', evalData: '/demo-data/eval.txt', steps: 60, lr: 0.001, batch: 8, seqLen: 128, warmup: 5, evalEvery: 20, device: 'auto' });
    // No GPU in this engine: the precision is not offered and not sent.
    expect((screen.getByLabelText('GPU precision') as HTMLSelectElement).disabled).toBe(true);

    const info = job({ id: 'job-t', kind: 'train', target: '/runs/fresh', state: 'running', progress: 0.5 });
    act(() => {
      applyJobEvents([
        { type: 'job', job: info, event: { type: 'train', step: 10, steps: 60, loss: 1.9, tokens_per_s: 850 } },
        { type: 'job', job: info, event: { type: 'train', step: 20, steps: 60, loss: 1.2, tokens_per_s: 900, where: 'NVIDIA H200 (bf16)', device_memory: { in_use: 3 * 2 ** 30, peak: 4 * 2 ** 30 } } },
        { type: 'job', job: info, event: { type: 'train', step: 20, steps: 60, eval_ppl: 3.5 } },
      ]);
    });
    expect(statValue('Step')).toBe('20 / 60');
    expect(statValue('Training loss')).toBe('1.2');
    expect(statValue('Held-out perplexity')).toBe('3.5');
    expect(statValue('Tokens / s')).toBe('900');
    expect(statValue('GPU memory')).toBe('3.00 GiB');
    expect(statValue('Running on')).toBe('NVIDIA H200 (bf16)');
    expect(screen.getByRole('figure', { name: 'Training loss by step' })).toBeTruthy();
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    });
    expect(fake.api.cancelJob).toHaveBeenCalledWith('job-t');
  });

  it('offers to resume a stopped training with its settings, and says which ones a change would break', async () => {
    useNav.setState({ run: '/runs/stopped' });
    render(<TrainView />);
    expect((screen.getByLabelText('Training data') as HTMLInputElement).value).toBe('/data/train.txt');
    expect((screen.getByLabelText('Learning rate') as HTMLInputElement).value).toBe('0.002');
    expect(screen.getByRole('button', { name: 'Resume (step 3 of 6)' })).toBeTruthy();
    expect(screen.getByRole('note').textContent).toMatch(/stopped at step 3 of 6/);
    fireEvent.change(screen.getByLabelText('Learning rate'), { target: { value: '0.01' } });
    expect(screen.getByRole('note').textContent).toMatch(/Changed: Learning rate \(was 0\.002\)/);
    expect(screen.getByRole('button', { name: 'Start fine-tuning' })).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Warm-up steps'), { target: { value: '9' } });
    expect(screen.getByRole('alert').textContent).toBe('at most the number of steps');
    expect((screen.getByRole('button', { name: 'Start fine-tuning' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('estimates the time left from the step rate', () => {
    expect(etaSeconds([{ step: 10, steps: 60, loss: 2, at: 0 }])).toBeNull();
    expect(etaSeconds([{ step: 10, steps: 60, loss: 2, at: 0 }, { step: 20, steps: 60, loss: 1, at: 5000 }])).toBeCloseTo(20, 9);
  });
});
