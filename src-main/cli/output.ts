// How a command reports: --json prints one JSON object per line on stdout (events, then
// the result); a human run gets a progress bar on stderr and readable text on stdout.
import type { JobEvent } from '../engine/jobs/events';
import { ProgressBar } from './progress';

export class Output {
  private bar: ProgressBar | null = null;

  constructor(readonly json: boolean) {}

  event(e: JobEvent): void {
    if (this.json) {
      if (e.type !== 'result') this.line({ ...e });
      return;
    }
    this.bar ??= new ProgressBar();
    switch (e.type) {
      case 'matrix':
        this.bar.update(e.index / e.total, `${e.name} [${e.shape.join('×')}] ${e.bits}-bit`);
        break;
      case 'step':
        this.bar.update((e.index + e.step / (e.iters + 1)) / e.total, `${e.name} step ${e.step}/${e.iters} err ${e.err.toFixed(4)}`);
        break;
      case 'layer':
        this.bar.update(e.done_params / e.total_params, `${e.layer.name} err ${e.layer.err_init.toFixed(4)}`);
        break;
      case 'eval':
        this.bar.update(
          e.total_tokens > 0 ? e.done_tokens / e.total_tokens : 0,
          `perplexity (${e.weights}) ${e.done_tokens}/${e.total_tokens} tokens` +
            (e.tokens_per_s ? `, ${Math.round(e.tokens_per_s)} tokens/s` : '') +
            (e.device_memory ? `, GPU ${(e.device_memory.in_use / 2 ** 30).toFixed(1)} GiB` : ''),
        );
        break;
      case 'train':
        if (e.loss !== undefined) this.bar.update(e.step / e.steps, `step ${e.step}/${e.steps} loss ${e.loss.toFixed(4)} lr ${(e.lr ?? 0).toExponential(2)}`);
        else if (e.eval_ppl !== undefined) this.bar.update(e.step / e.steps, `step ${e.step}/${e.steps} held-out perplexity ${e.eval_ppl.toFixed(3)}`);
        break;
      case 'phase':
        this.bar.update(1, `writing ${e.phase}${e.detail ? ` ${e.detail}` : ''}`);
        break;
      default:
        break;
    }
  }

  /** The final result: a JSON line, or text for a person. */
  result(value: Record<string, unknown>, text: () => string): void {
    this.bar?.done();
    if (this.json) this.line({ type: 'result', ...value });
    else process.stdout.write(text());
  }

  /** A remark before the work (what the planner chose): a JSON line, or a line on stderr. */
  note(message: string): void {
    if (this.json) this.line({ type: 'note', message });
    else {
      this.bar?.done();
      process.stderr.write(`${message}\n`);
    }
  }

  line(obj: Record<string, unknown>): void {
    process.stdout.write(JSON.stringify(obj) + '\n');
  }

  finish(): void {
    this.bar?.done();
  }
}
