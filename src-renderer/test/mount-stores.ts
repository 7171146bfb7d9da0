// Component tests' start: the stores connected to a fake engine, with fake timers that still
// advance, and the first coalesced listRuns delivered; the returned function undoes it all.
import { act, cleanup } from '@testing-library/react';
import { vi } from 'vitest';
import { startStores } from '../stores/start';
import type { ClientApi } from '../transport/types';

export async function mountStores(api: ClientApi): Promise<() => void> {
  vi.useFakeTimers({ shouldAdvanceTime: true });
  const stop = startStores(api);
  await act(async () => {
    await vi.advanceTimersByTimeAsync(200);
  });
  return () => {
    cleanup();
    stop();
    vi.useRealTimers();
  };
}
