// The instant planner in the Quantize view: once a model is profiled, the predicted error of
// every matrix for the bits and rank being edited (one LoftQ step: exact by Pythagoras, and an
// upper bound for more steps), its mean and worst, a heatmap, and a budget mode that picks bits
// per matrix for an average-bits budget (adapter included).
import { useEffect, useMemo, useState } from 'react';
import type { TargetInfo } from '../../../src-main/api/contract';
import { ErrorNote, ProgressBar, Segmented, Stat, TextField } from '../../components/common';
import { Heatmap } from '../../components/Heatmap';
import { formatNum } from '../../lib/format';
import { allocateBits, allocateBitsAndRank, averageBits, predict } from '../../lib/planner';
import { useConnection } from '../../stores/connection';
import { isLive, useJobs } from '../../stores/jobs';
import { profileKey, usePlanner } from '../../stores/planner';

export interface PlannerPanelProps {
  model: string;
  quant: 'nf' | 'uniform' | 'ggml';
  block: number;
  rank: number;
  targets: readonly TargetInfo[];
  bits: readonly number[];
  choices: readonly number[];
  /** The allocation: bits per target, and the rank when the planner chose it too. */
  onApply: (bits: number[], rank?: number) => void;
}

export function PlannerPanel(props: PlannerPanelProps) {
  const { model, quant, block, rank, targets, bits, choices } = props;
  const online = useConnection((s) => s.status.state === 'open');
  const request = useMemo(() => ({ model, quant, block }), [model, quant, block]);
  const key = profileKey(request);
  const prepared = usePlanner((s) => s.profiles[key]);
  const loading = usePlanner((s) => s.loading[key] ?? false);
  const jobId = usePlanner((s) => s.jobs[key]);
  const error = usePlanner((s) => s.error);
  const { load, start } = usePlanner.getState();
  const job = useJobs((s) => (jobId ? s.jobs[jobId] : undefined));
  const [budget, setBudget] = useState('');
  const [unit, setUnit] = useState<'bits' | 'mib'>('bits');
  const [chooseRank, setChooseRank] = useState(false);

  useEffect(() => {
    if (online && prepared === undefined) void load(request);
  }, [online, prepared, request, load]);
  // A finished profile job: fetch what it wrote.
  useEffect(() => {
    if (job?.state === 'done') void load(request);
  }, [job?.state, request, load]);

  const names = useMemo(() => targets.map((t) => t.name), [targets]);
  const prediction = useMemo(() => (prepared ? predict(prepared, names, bits, rank) : null), [prepared, names, bits, rank]);
  const cells = useMemo(
    () => (prediction ? targets.map((t, k) => ({ name: t.name, layer: t.layer, module: t.module, value: prediction.errors[k] })).filter((c) => Number.isFinite(c.value)) : []),
    [prediction, targets],
  );
  const scaleBits = quant === 'ggml' ? 16 : 32;
  // A budget in MiB is the quantized matrices plus the adapter: the same as average bits × weights.
  const params = targets.reduce((s, t) => s + t.shape[0] * t.shape[1], 0);
  const toBits = (v: number) => (unit === 'bits' ? v : (v * 2 ** 20 * 8) / params);
  const fromBits = (b: number) => (unit === 'bits' ? b : (b * params) / 8 / 2 ** 20);
  const budgetValue = toBits(Number(budget));
  // The smallest budget that fits: the fewest bits everywhere, with this rank (or rank 1 when the planner picks it).
  const floor = prepared ? averageBits(targets.map((t) => t.shape), targets.map(() => Math.min(...choices)), block, scaleBits, chooseRank ? 1 : rank, true) : NaN;
  const smallestSide = Math.min(...targets.map((t) => Math.min(...t.shape)));
  const rankChoices = prepared ? [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].filter((r) => r <= prepared.maxRank && r <= smallestSide) : [];
  const budgetError =
    budget.trim() === ''
      ? undefined
      : !(budgetValue > 0)
        ? unit === 'bits'
          ? 'a number of bits'
          : 'a number of MiB'
        : budgetValue < floor
          ? `at least ${fromBits(floor).toFixed(2)}${unit === 'mib' ? ' MiB' : ''} with rank ${chooseRank ? 1 : rank} (everything at ${Math.min(...choices)} bits)`
          : undefined;
  const missingRank = prepared && rank > prepared.maxRank;

  return (
    <section className="panel" aria-label="Planner">
      <h2>Predicted error</h2>
      {prepared === undefined || loading ? (
        <p className="small muted">Looking for this model&apos;s profile…</p>
      ) : prepared === null ? (
        <>
          <p className="small muted" style={{ marginTop: 0 }}>
            Profile this model once (one pass over its weights per bit width) and the error of every matrix is predicted as you edit the bits and rank, before any run.
          </p>
          <button type="button" className="primary" disabled={!online || (job !== undefined && isLive(job))} onClick={() => void start({ ...request, maxRank: 64 })}>
            Profile this model
          </button>
          {job && isLive(job) && <ProgressBar value={job.progress} label="Profile progress" />}
          {job?.state === 'failed' && <div className="note error">{job.error}</div>}
        </>
      ) : (
        <>
          <div className="stats">
            <Stat label="Predicted mean err" value={missingRank ? '–' : formatNum(prediction?.mean)} sub="one LoftQ step (T = 1); more steps only lower it" />
            <Stat label="Predicted worst err" value={missingRank ? '–' : formatNum(prediction?.worst?.err)} sub={prediction?.worst?.name.replace(/^model\.layers\./, 'layer ') ?? ''} />
          </div>
          {missingRank && <div className="note">The profile has singular values up to rank {prepared.maxRank}; profile again with a larger maximum rank to predict rank {rank}.</div>}
          {!missingRank && cells.length > 0 && <Heatmap cells={cells} valueLabel="predicted err" label="Predicted error heatmap" />}
          <p className="small muted">err = ‖W − Q − s·B·A‖ / ‖W‖.</p>
          <div className="row" style={{ alignItems: 'flex-end' }}>
            <TextField
              label={unit === 'bits' ? 'Budget: average bits per weight, adapter included' : 'Budget: MiB of quantized matrices and adapter'}
              value={budget}
              error={budgetError}
              placeholder={fromBits(floor).toFixed(2)}
              onChange={setBudget}
              className="grow"
            />
            <Segmented
              label="Budget unit"
              value={unit}
              options={[
                { value: 'bits', label: 'bits / weight' },
                { value: 'mib', label: 'MiB' },
              ]}
              onChange={(u) => {
                setUnit(u);
                setBudget('');
              }}
            />
            <button
              type="button"
              disabled={!!budgetError || budget.trim() === '' || !!missingRank}
              onClick={() => {
                if (chooseRank) {
                  const chosen = allocateBitsAndRank(prepared, names, choices, rankChoices, block, scaleBits, budgetValue);
                  if (chosen) props.onApply(chosen.bits, chosen.rank);
                } else {
                  const chosen = allocateBits(prepared, names, choices, rank, block, scaleBits, budgetValue);
                  if (chosen) props.onApply(chosen);
                }
              }}
            >
              {chooseRank ? 'Allocate bits and rank' : 'Allocate bits'}
            </button>
          </div>
          <label className="check small">
            <input type="checkbox" checked={chooseRank} onChange={(e) => setChooseRank(e.target.checked)} /> also choose the rank ({rankChoices.join(', ')})
          </label>
        </>
      )}
      <ErrorNote error={error} />
    </section>
  );
}
