import { runQuantize } from '../../engine/jobs/quantize-job';
import type { QuantizeOptions } from '../../engine/jobs/quantize-options';
import type { Output } from '../output';

export async function quantizeCommand(options: QuantizeOptions, out: Output, signal: AbortSignal): Promise<void> {
  const record = await runQuantize(options, { signal, onEvent: (e) => out.event(e) });
  const s = record.summary ?? {};
  out.result({ run: options.out, status: record.status, summary: s, timings: record.timings }, () =>
    `run ${options.out}: ${s.matrices} matrices, ${options.method} ${options.bits}-bit${options.bitsMap ? ` (${options.bitsMap})` : ''}, ` +
      `rank ${options.rank}, avg ${Number(s.avg_bits).toFixed(2)} bits/weight\n` +
      `  mean error: QLoRA init ${Number(s.mean_err_q).toFixed(4)} → this init ${Number(s.mean_err_init).toFixed(4)} (max ${Number(s.max_err_init).toFixed(4)})\n` +
      `  ${Number(record.timings.total_s).toFixed(1)} s\n`,
  );
}
