import { describe, expect, it } from 'vitest';
import { Pool } from './pool';

describe('Pool', () => {
  it('runs at most N at once, in order, and keeps going after a failure', async () => {
    const pool = new Pool(2);
    let now = 0;
    let peak = 0;
    const started: number[] = [];
    const tasks = Array.from({ length: 10 }, (_, i) =>
      pool.run(async () => {
        started.push(i);
        now++;
        peak = Math.max(peak, now);
        await new Promise((r) => setTimeout(r, 5));
        now--;
        if (i === 3) throw new Error('boom');
        return i;
      }),
    );
    const results = await Promise.allSettled(tasks);
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(pool.load).toEqual({ running: 0, waiting: 0 });
  });
});
