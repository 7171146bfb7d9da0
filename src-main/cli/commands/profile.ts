// `loftq profile MODEL --out FILE`: the planner's profile (plan/profile-job.ts) written as JSON,
// and the one-step LoftQ error it predicts per bit width and rank printed as a table.
import { writeJsonAtomic } from '../../engine/io/atomic-write';
import { predictedError } from '../../engine/plan/predict';
import { PROFILE_FILE, runProfile, type ProfileOptions } from '../../engine/plan/profile-job';
import { checkOutputFile } from '../../engine/runs/ownership';
import type { Output } from '../output';
import { formatTable } from '../table';

export async function profileCommand(o: Omit<ProfileOptions, 'signal' | 'onEvent'>, outFile: string, force: boolean, out: Output, signal: AbortSignal): Promise<void> {
  // Checked before the work and again before the write (the file may have appeared meanwhile).
  await checkOutputFile(outFile, force, PROFILE_FILE);
  const profile = await runProfile({ ...o, signal, onEvent: (e) => out.event(e) });
  await writeJsonAtomic(await checkOutputFile(outFile, force, PROFILE_FILE), profile);
  out.result({ out: outFile, matrices: profile.matrices.length, seconds: profile.seconds }, () => {
    const bits = Object.keys(profile.matrices[0]?.bits ?? {});
    const ranks = [0, 8, 16, 32, 64, 128].filter((r) => r <= profile.max_rank);
    const rows = bits.map((b) => [
      `${b}-bit`,
      ...ranks.map((r) => (profile.matrices.reduce((s, m) => s + predictedError(m, Number(b), Math.min(r, m.bits[b].sv.length)), 0) / profile.matrices.length).toFixed(4)),
    ]);
    return (
      `profiled ${profile.matrices.length} matrices in ${profile.seconds.toFixed(1)} s → ${outFile}\n` +
      `mean err = ‖W − Q − B·A‖/‖W‖ after one LoftQ step, by rank (rank 0: Q alone, QLoRA):\n\n` +
      formatTable(['bits', ...ranks.map((r) => `r=${r}`)], rows)
    );
  });
}
