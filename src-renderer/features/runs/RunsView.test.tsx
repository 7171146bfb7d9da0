import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { useCompare } from '../../stores/compare';
import { useNav } from '../../stores/nav';
import { useRuns } from '../../stores/runs';
import { startStores } from '../../stores/start';
import { fakeApi, runSummary } from '../../test/fake-api';
import { RunsView } from './RunsView';

describe('Runs view', () => {
  let stop: () => void;
  let fake: ReturnType<typeof fakeApi>;
  beforeEach(async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const runs = [runSummary('loftq-2bit'), runSummary('qlora-2bit', { method: 'qlora', mean_err_init: 0.58 })];
    fake = fakeApi({
      listRuns: vi.fn(async () => runs),
      renameRun: vi.fn(async (dir: string, name: string) => ({ ...runSummary(name), dir: `/runs/${name}` })),
    });
    useRuns.setState({ runs: [], details: {}, version: 0 });
    stop = startStores(fake.api);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(200); // the coalesced listRuns after connecting
    });
  });
  afterEach(() => {
    cleanup();
    stop();
    vi.useRealTimers();
  });

  it('lists the runs with their numbers', () => {
    render(<RunsView />);
    const rows = screen.getAllByRole('row');
    expect(rows).toHaveLength(3);
    expect(within(rows[1]).getByText('loftq-2bit')).toBeTruthy();
    const cells = within(rows[2]).getAllByRole('cell').map((c) => c.textContent);
    expect(cells.slice(3, 9)).toEqual(['qlora', '2', '16', '2.5', '0.58', '0.58']);
  });

  it('deletes only after confirmation', async () => {
    render(<RunsView />);
    fireEvent.click(screen.getByRole('button', { name: 'Delete qlora-2bit' }));
    const dialog = screen.getByRole('alertdialog');
    expect(dialog.textContent).toContain('/runs/qlora-2bit');
    // Focus starts on Cancel; Escape closes without deleting.
    expect(document.activeElement?.textContent).toBe('Cancel');
    fireEvent.keyDown(document, { key: 'Escape' });
    expect(screen.queryByRole('alertdialog')).toBeNull();
    expect(fake.api.deleteRun).not.toHaveBeenCalled();

    fireEvent.click(screen.getByRole('button', { name: 'Delete qlora-2bit' }));
    await act(async () => {
      fireEvent.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Delete run' }));
    });
    expect(fake.api.deleteRun).toHaveBeenCalledWith('/runs/qlora-2bit');
    expect(screen.queryByText('qlora-2bit')).toBeNull();
  });

  it('renames inline with Enter, and Escape cancels', async () => {
    render(<RunsView />);
    fireEvent.click(screen.getByRole('button', { name: 'Rename loftq-2bit' }));
    const input = screen.getByRole('textbox', { name: 'New name for loftq-2bit' }) as HTMLInputElement;
    expect(document.activeElement).toBe(input);
    fireEvent.keyDown(input, { key: 'Escape' });
    expect(screen.queryByRole('textbox')).toBeNull();

    fireEvent.click(screen.getByRole('button', { name: 'Rename loftq-2bit' }));
    const again = screen.getByRole('textbox', { name: 'New name for loftq-2bit' });
    fireEvent.change(again, { target: { value: 'bad name!' } });
    expect((screen.getByRole('button', { name: 'Save' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(again, { target: { value: 'best-2bit' } });
    await act(async () => {
      fireEvent.keyDown(again, { key: 'Enter' });
    });
    expect(fake.api.renameRun).toHaveBeenCalledWith('/runs/loftq-2bit', 'best-2bit');
    expect(screen.getByText('best-2bit')).toBeTruthy();
  });

  it('opens a run in Layer error', () => {
    render(<RunsView />);
    fireEvent.click(screen.getByRole('button', { name: 'Open loftq-2bit in Layer error' }));
    expect(useNav.getState()).toMatchObject({ view: 'layers', run: '/runs/loftq-2bit' });
  });

  it('refreshes when the server says the runs changed', async () => {
    render(<RunsView />);
    const calls = vi.mocked(fake.api.listRuns).mock.calls.length;
    act(() => {
      fake.emit({ type: 'runs-changed' });
      fake.emit({ type: 'runs-changed' });
    });
    await act(async () => {
      await vi.advanceTimersByTimeAsync(200);
    });
    expect(vi.mocked(fake.api.listRuns).mock.calls.length).toBe(calls + 1);
  });

  it('picks runs for Compare', () => {
    render(<RunsView />);
    const compare = screen.getByRole('button', { name: /^Compare/ }) as HTMLButtonElement;
    expect(compare.disabled).toBe(true);
    fireEvent.click(screen.getByRole('checkbox', { name: 'Pick loftq-2bit for Compare' }));
    fireEvent.click(screen.getByRole('checkbox', { name: 'Pick qlora-2bit for Compare' }));
    expect(compare.textContent).toBe('Compare 2 selected');
    fireEvent.click(compare);
    expect(useCompare.getState()).toMatchObject({ selected: ['/runs/loftq-2bit', '/runs/qlora-2bit'], touched: true });
    expect(useNav.getState().view).toBe('compare');
  });
});
