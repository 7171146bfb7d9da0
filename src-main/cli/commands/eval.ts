import { runEval, type EvalOptions } from '../../engine/jobs/eval-job';
import type { Output } from '../output';
import { formatTable } from '../table';

export type EvalArgs = Omit<EvalOptions, 'signal' | 'onEvent'>;

const LABEL = { fp: 'full precision', q: 'quantized Q', 'q+lora': 'Q + adapter' } as const;

export async function evalCommand(args: EvalArgs, out: Output, signal: AbortSignal): Promise<void> {
  const result = await runEval({ ...args, signal, onEvent: (e) => out.event(e) });
  out.result({ ...result }, () => {
    const gib = (b?: number) => (b === undefined ? '' : `${(b / 2 ** 30).toFixed(2)} GiB`);
    const rows = result.results.map((r) => [LABEL[r.weights], r.ppl.toFixed(3), r.tokens, `${r.seconds.toFixed(1)}s`, Math.round(r.tokens / r.seconds), gib(r.device_memory_peak)]);
    const skipped = result.skipped.map((s) => `  (${LABEL[s.weights]} skipped: ${s.reason})\n`).join('');
    return (
      `perplexity of ${result.target} on ${result.data} (window ${result.seq_len}, stride ${result.stride}, batch ${result.batch}; ` +
      `${result.results[0]?.where ?? 'CPU'}: ${String(result.device.reason)})\n\n` +
      formatTable(['weights', 'perplexity', 'tokens', 'time', 'tokens/s', 'GPU memory peak'], rows) +
      skipped
    );
  });
}
