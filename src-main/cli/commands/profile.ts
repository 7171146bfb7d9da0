// `loftq profile MODEL --out FILE`: the planner's profile (jobs/profile-job.ts) written as JSON,
// and what it predicts printed as a table: the mean initial error by bit width for QLoRA
// (‖W − Q‖, whatever the rank) and for one LoftQ step at several ranks.
import { writeJsonAtomic } from '../../engine/io/atomic-write';
import { runProfile, type ProfileOptions } from '../../engine/jobs/profile-job';
import { PROFILE_FILE } from '../../engine/plan/profile-cache';
import { checkOutputFile } from '../../engine/runs/ownership';
import { predict, prepareProfile } from '../../engine/rules/planner';
import type { Output } from '../output';
import { formatTable } from '../table';

export async function profileCommand(o: Omit<ProfileOptions, 'signal' | 'onEvent'>, outFile: string, force: boolean, out: Output, signal: AbortSignal): Promise<void> {
  // Checked before the work and again before the write (the file may have appeared meanwhile).
  await checkOutputFile(outFile, force, PROFILE_FILE);
  const profile = await runProfile({ ...o, signal, onEvent: (e) => out.event(e) });
  await writeJsonAtomic(await checkOutputFile(outFile, force, PROFILE_FILE), profile);
  out.result({ out: outFile, matrices: profile.matrices.length, seconds: profile.seconds }, () => {
    const prepared = prepareProfile(profile);
    const bits = Object.keys(profile.matrices[0]?.bits ?? {}).map(Number);
    const ranks = [8, 16, 32, 64, 128].filter((r) => r <= profile.max_rank);
    const mean = (b: number, rank: number, method: 'qlora' | 'loftq') => predict(prepared, prepared.names, prepared.names.map(() => b), rank, method).mean.toFixed(4);
    const rows = bits.map((b) => [`${b}-bit`, mean(b, 0, 'qlora'), ...ranks.map((r) => mean(b, r, 'loftq'))]);
    return (
      `profiled ${profile.matrices.length} matrices in ${profile.seconds.toFixed(1)} s → ${outFile}\n` +
      `predicted mean err = ‖W − Q − s·B·A‖/‖W‖: QLoRA is ‖W − Q‖/‖W‖ at any rank (B = 0); LoftQ after one\n` +
      `alternating step at rank r (more steps only lower it). loftq quantize --budget BITS --profile ${outFile} plans a run.\n\n` +
      formatTable(['bits', 'QLoRA', ...ranks.map((r) => `LoftQ r=${r}`)], rows)
    );
  });
}
