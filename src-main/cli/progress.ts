// A progress bar on stderr for human runs: redrawn in place on a terminal, a line every
// few seconds otherwise (logs, CI), so long runs stay visible without flooding.
export class ProgressBar {
  private lastDraw = 0;
  private lastLine = '';
  private readonly tty: boolean;
  private readonly started = Date.now();

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(stream.isTTY);
  }

  update(fraction: number, label: string): void {
    const now = Date.now();
    const interval = this.tty ? 80 : 5000;
    if (now - this.lastDraw < interval && fraction < 1) return;
    this.lastDraw = now;
    const f = Math.max(0, Math.min(1, fraction));
    const elapsed = (now - this.started) / 1000;
    const eta = f > 0.01 ? ` eta ${formatSeconds((elapsed * (1 - f)) / f)}` : '';
    if (this.tty) {
      const width = 28;
      const filled = Math.round(f * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      const cols = this.stream.columns || 100;
      const line = `${bar} ${(f * 100).toFixed(0).padStart(3)}% ${formatSeconds(elapsed)}${eta}  ${label}`;
      this.stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, this.lastLine.length))}`);
      this.lastLine = line;
    } else {
      this.stream.write(`[${(f * 100).toFixed(0).padStart(3)}%] ${formatSeconds(elapsed)} ${label}\n`);
    }
  }

  /** Ends the bar's line so that later output starts on a fresh one. */
  done(): void {
    if (this.tty && this.lastLine) this.stream.write('\n');
    this.lastLine = '';
  }
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}
