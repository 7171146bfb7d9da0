import { act, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { useExport } from '../../stores/export';
import { useJobs } from '../../stores/jobs';
import { useRuns } from '../../stores/runs';
import { mountStores } from '../../test/mount-stores';
import { fakeApi, job, runSummary } from '../../test/fake-api';
import { ExportView } from './ExportView';

describe('Export view', () => {
  let stop: () => void;
  let fake: ReturnType<typeof fakeApi>;
  beforeEach(async () => {
    const q4 = runSummary('loftq-q4_0');
    q4.record.config = { ...q4.record.config, quant: 'ggml', bits: 4, block: 32 };
    fake = fakeApi({
      listRuns: vi.fn(async () => [q4, runSummary('loftq-nf2')]),
      startExport: vi.fn(async (r) => job({ id: 'job-x', kind: 'export', target: r.run, state: 'queued' })),
    });
    useRuns.setState({ runs: [], details: {}, version: 0 });
    useExport.setState({ format: 'peft', out: '', outTouched: false, force: false, jobId: null, error: null, submitting: false });
    useJobs.setState({ jobs: {}, order: [], progress: {}, dismissed: {} });
    stop = await mountStores(fake.api);
  });
  afterEach(() => stop());

  it('offers GGUF, says what the base stores for the run, and shows the files and notes written', async () => {
    render(<ExportView />);
    fireEvent.click(screen.getByRole('button', { name: 'GGUF for llama.cpp' }));
    expect(screen.getByText(/q4_0\/q8_0 blocks as they are/)).toBeTruthy();
    expect(screen.getByText('llama-cli -m model.gguf --lora adapter.gguf')).toBeTruthy();
    expect((screen.getByLabelText(/Output folder/) as HTMLInputElement).value).toBe('/runs/exports/loftq-q4_0-gguf');

    // An NF run: the base is F16 of Q, and the hint says so.
    fireEvent.change(screen.getByLabelText('Run'), { target: { value: '/runs/loftq-nf2' } });
    expect(screen.getByText(/Q as F16 \(llama.cpp has no NF or uniform type/)).toBeTruthy();

    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Export' }));
    });
    expect(fake.api.startExport).toHaveBeenCalledWith(expect.objectContaining({ run: '/runs/loftq-nf2', format: 'gguf', out: '/runs/exports/loftq-nf2-gguf' }));
    const note = 'llama.cpp has no type for nf2: those matrices are stored as F16 of Q';
    act(() => {
      useJobs.setState((s) => ({
        jobs: { ...s.jobs, 'job-x': job({ id: 'job-x', kind: 'export', target: '/runs/loftq-nf2', state: 'done', progress: 1, result: { out: '/exports/loftq-nf2-gguf', format: 'gguf', files: ['adapter.gguf', 'model.gguf'], notes: [note] } }) },
        order: s.order.includes('job-x') ? s.order : ['job-x', ...s.order],
      }));
    });
    expect(screen.getByText('model.gguf')).toBeTruthy();
    expect(screen.getByRole('note').textContent).toBe(note);
  });
});
