import { runExport } from '../../engine/jobs/export-job';
import type { Output } from '../output';

export async function exportCommand(run: string, format: string, outDir: string, force: boolean, out: Output): Promise<void> {
  const result = await runExport({ run, format, out: outDir, force, onEvent: (e) => out.event(e) });
  out.result(result, () => `exported ${result.format} to ${result.out}\n${result.files.map((f) => `  ${f}`).join('\n')}\n`);
}
