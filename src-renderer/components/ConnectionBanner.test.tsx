import { act, cleanup, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { useConnection } from '../stores/connection';
import { useJobs } from '../stores/jobs';
import { useRuns } from '../stores/runs';
import { startStores } from '../stores/start';
import { fakeApi, job } from '../test/fake-api';
import { ConnectionBanner } from './ConnectionBanner';

describe('the connection bar', () => {
  let stop: () => void;
  let fake: ReturnType<typeof fakeApi>;
  beforeEach(() => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    fake = fakeApi();
    useJobs.setState({ jobs: {}, order: [], progress: {}, dismissed: {} });
    stop = startStores(fake.api);
  });
  afterEach(() => {
    cleanup();
    stop();
    vi.useRealTimers();
  });

  it('says at the top that the engine is unreachable and when it tries again; then that it is back, with the state fetched again', async () => {
    render(<ConnectionBanner />);
    expect(screen.queryByRole('alert')).toBeNull(); // connected: nothing to say
    act(() => fake.setStatus({ state: 'closed', attempt: 2, error: 'cannot reach the LoftQ engine', retryAt: Date.now() + 4000 }));
    expect(screen.getByRole('alert').textContent).toMatch(/Not connected to the engine\. cannot reach the LoftQ engine\. Trying again in 4 s \(attempt 3\)/);
    act(() => fake.setStatus({ state: 'connecting', attempt: 3 }));
    expect(screen.getByRole('alert').textContent).toMatch(/Reconnecting to the engine/);
    const calls = (fake.api.listJobs as ReturnType<typeof vi.fn>).mock.calls.length;
    await act(async () => {
      fake.setStatus({ state: 'open', attempt: 0 });
    });
    expect(screen.queryByRole('alert')).toBeNull();
    expect(screen.getByRole('status').textContent).toMatch(/Reconnected/);
    // The engine's state is fetched again: jobs, runs, the recent models.
    expect((fake.api.listJobs as ReturnType<typeof vi.fn>).mock.calls.length).toBeGreaterThan(calls);
    expect(fake.api.recentModels).toHaveBeenCalled();
    await act(async () => {
      await vi.advanceTimersByTimeAsync(5000);
    });
    expect(screen.queryByRole('status')).toBeNull();
    expect(useConnection.getState().status.state).toBe('open');
    expect(useRuns.getState().version).toBeGreaterThan(0);
  });

  it('a job the restarted engine lists as interrupted, or no longer knows, stops looking live', async () => {
    useJobs.setState({
      jobs: { a: job({ id: 'a', state: 'running' }), b: job({ id: 'b', state: 'queued' }) },
      order: ['a', 'b'],
      progress: {},
      dismissed: {},
    });
    (fake.api.listJobs as ReturnType<typeof vi.fn>).mockResolvedValue([job({ id: 'a', state: 'interrupted', label: 'interrupted: the engine stopped while this job was running' })]);
    await act(async () => {
      await useJobs.getState().refresh();
    });
    const jobs = useJobs.getState().jobs;
    expect(jobs.a.state).toBe('interrupted');
    expect(jobs.b.state).toBe('interrupted');
    expect(jobs.b.label).toMatch(/no longer knows/);
  });
});
