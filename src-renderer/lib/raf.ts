// Batches high-rate inputs (job progress events) into one state update per animation frame,
// so a run over 500+ matrices re-renders at most ~60 times a second.

export type Scheduler = (run: () => void) => void;

/** requestAnimationFrame while visible; a timer when the page is hidden (rAF stops there). */
export const frameScheduler: Scheduler = (run) => {
  if (typeof document !== 'undefined' && document.visibilityState === 'hidden') setTimeout(run, 250);
  else if (typeof requestAnimationFrame === 'function') requestAnimationFrame(() => run());
  else setTimeout(run, 16);
};

export interface Batcher<T> {
  push(item: T): void;
  /** Applies whatever is buffered now (tests, teardown). */
  flush(): void;
}

export function createBatcher<T>(apply: (items: T[]) => void, schedule: Scheduler = frameScheduler): Batcher<T> {
  let buffer: T[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (buffer.length === 0) return;
    const items = buffer;
    buffer = [];
    apply(items);
  };
  return {
    push(item) {
      buffer.push(item);
      if (!scheduled) {
        scheduled = true;
        schedule(flush);
      }
    },
    flush,
  };
}
