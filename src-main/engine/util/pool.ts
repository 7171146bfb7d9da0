// At most N calls of some kind at once; the rest wait in order. The service runs its heavy
// requests (opening model folders, reading runs) through one, so a burst of them cannot hold
// more than N headers and configs in memory together.
export class Pool {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`a pool needs a positive size, got ${size}`);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) await new Promise<void>((go) => this.waiting.push(go));
    else this.running++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next caller; only with nobody waiting is it freed.
      if (next) next();
      else this.running--;
    }
  }

  /** Calls running now and waiting. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
