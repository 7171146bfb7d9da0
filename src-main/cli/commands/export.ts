// `loftq export RUN_DIR --format peft|gguf|merged --out DIR`: the export job, its result printed.
import { runExport } from '../../engine/jobs/export-job';
import type { Output } from '../output';

export async function exportCommand(run: string, format: string, outDir: string, force: boolean, out: Output, signal: AbortSignal): Promise<void> {
  const result = await runExport({ run, format, out: outDir, force, signal, onEvent: (e) => out.event(e) });
  out.result({ ...result }, () => {
    const files = result.files.map((f) => `  ${f}`).join('\n');
    const notes = result.notes.map((n) => `note: ${n}\n`).join('');
    return `exported ${result.format} to ${result.out}\n${files}\n${notes}`;
  });
}
