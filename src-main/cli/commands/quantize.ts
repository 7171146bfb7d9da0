import { runQuantize } from '../../engine/jobs/quantize-job';
import type { QuantizeOptions } from '../../engine/jobs/quantize-options';
import type { Output } from '../output';

export async function quantizeCommand(options: QuantizeOptions, out: Output, signal: AbortSignal): Promise<void> {
  const record = await runQuantize(options, { signal, onEvent: (e) => out.event(e) });
  const s = record.summary ?? {};
  const device = record.device ?? {};
  out.result({ run: options.out, status: record.status, summary: s, timings: record.timings, device }, () => {
    const lines = [
      `run ${options.out}: ${s.matrices} matrices, ${options.method} ${options.bits}-bit${options.bitsMap ? ` (${options.bitsMap})` : ''}, ` +
        `rank ${options.rank}, avg ${Number(s.avg_bits).toFixed(2)} bits/weight`,
      `  mean error: QLoRA init ${Number(s.mean_err_q).toFixed(4)} → this init ${Number(s.mean_err_init).toFixed(4)} (max ${Number(s.max_err_init).toFixed(4)})`,
    ];
    // LoftQ's alternation is not monotone: say where a step made it worse and what was kept.
    if (Number(s.matrices_error_rose) > 0) {
      lines.push(`  ${s.matrices_error_rose} matrices' error rose between steps; each keeps its best step (${s.matrices_best_not_last} of them an earlier one)`);
    }
    if (Number(s.matrices_stopped_early) > 0) lines.push(`  ${s.matrices_stopped_early} matrices stopped before ${options.iters} steps: their error had stopped falling`);
    lines.push(`  ${Number(record.timings.total_s).toFixed(1)} s on ${String(device.name ?? 'the CPU')} (${String(device.reason ?? '')})`);
    return lines.join('\n') + '\n';
  });
}
