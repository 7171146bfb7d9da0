// Runs engine jobs one at a time (each uses every core, so running two at once would only
// slow both), with an AbortController per job for cancel. Knows nothing of transports.
import { randomBytes } from 'node:crypto';
import { CancelledError, UserError } from '../errors';

export type QueuedState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface QueuedJob<R = unknown> {
  readonly id: string;
  state: QueuedState;
  result?: R;
  error?: { message: string; user: boolean };
  readonly done: Promise<void>;
}

type Work<R> = (signal: AbortSignal) => Promise<R>;

export class JobQueue {
  private next = 1;
  // Distinct per queue, so ids stay unique across a restarted compute process.
  private readonly prefix = randomBytes(3).toString('hex');
  private tail: Promise<void> = Promise.resolve();
  private readonly controllers = new Map<string, AbortController>();

  constructor(private readonly onChange: (job: QueuedJob) => void) {}

  submit<R>(work: Work<R>): QueuedJob<R> {
    const id = `job-${this.prefix}-${this.next++}`;
    const controller = new AbortController();
    this.controllers.set(id, controller);
    const job: { -readonly [K in keyof QueuedJob<R>]: QueuedJob<R>[K] } = { id, state: 'queued', done: Promise.resolve() };
    const run = async () => {
      if (controller.signal.aborted) {
        job.state = 'cancelled';
      } else {
        job.state = 'running';
        this.onChange(job);
        try {
          job.result = await work(controller.signal);
          job.state = 'done';
        } catch (e) {
          if (e instanceof CancelledError || controller.signal.aborted) job.state = 'cancelled';
          else {
            job.state = 'failed';
            job.error = { message: e instanceof Error ? e.message : String(e), user: e instanceof UserError };
          }
        }
      }
      this.controllers.delete(id);
      this.onChange(job);
    };
    job.done = this.tail.then(run);
    this.tail = job.done;
    this.onChange(job);
    return job;
  }

  /** Cancels a queued or running job; false when there is no such live job. */
  cancel(id: string): boolean {
    const c = this.controllers.get(id);
    if (!c) return false;
    c.abort();
    return true;
  }

  cancelAll(): void {
    for (const c of this.controllers.values()) c.abort();
  }

  /** Resolves when every job submitted so far has finished. */
  idle(): Promise<void> {
    return this.tail;
  }
}
