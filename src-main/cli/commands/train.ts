import { runTrain, type TrainOptions } from '../../engine/jobs/train-job';
import type { Output } from '../output';

export type TrainArgs = Omit<TrainOptions, 'signal' | 'onEvent'>;

export async function trainCommand(args: TrainArgs, out: Output, signal: AbortSignal): Promise<void> {
  const r = await runTrain({ ...args, signal, onEvent: (e) => out.event(e) });
  out.result({ ...r, config: { ...r.config } }, () =>
    `run ${r.run}: trained ${r.step}/${r.steps} steps` +
      (r.resumed_from !== null ? ` (resumed from step ${r.resumed_from})` : '') +
      `\n  last loss ${r.last_loss === null ? '-' : r.last_loss.toFixed(4)}, held-out perplexity ${r.last_eval_ppl === null ? '-' : `${r.last_eval_ppl.toFixed(3)} (rows of ${r.config.seqLen} tokens, no overlap; loftq eval's sliding window reads lower)`}` +
      `\n  adapter: ${r.adapter}\n`,
  );
}
