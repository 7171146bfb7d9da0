// The instant planner in the Quantize view: once a model is profiled, the initial error each
// matrix will have under the chosen method, bits and rank (QLoRA: ‖W − Q‖, B = 0; LoftQ: one
// alternating step, exact by Pythagoras and an upper bound for more steps), its mean and worst,
// a heatmap, and a budget mode that picks bits per matrix (and, for LoftQ, the rank) for an
// average-bits budget, adapter included. The rules are the engine's (src-main/engine/rules/).
import { useEffect, useMemo, useState } from 'react';
import type { TargetInfo } from '../../../src-main/api/contract';
import { scaleBitsOf } from '../../../src-main/engine/rules/average-bits';
import { budgetRange, candidateRanks, planBudget } from '../../../src-main/engine/rules/budget';
import { ALPHA_RULE_LABELS, alphaForRank, loraScaling, type AlphaRule } from '../../../src-main/engine/rules/lora-scaling';
import { predict, type PlanMethod } from '../../../src-main/engine/rules/planner';
import { ErrorNote, ProgressBar, Segmented, Stat, TextField } from '../../components/common';
import { Heatmap } from '../../components/Heatmap';
import { formatNum } from '../../lib/format';
import { useConnection } from '../../stores/connection';
import { isLive, useJobs } from '../../stores/jobs';
import { profileKey, usePlanner } from '../../stores/planner';

export interface PlannerPanelProps {
  model: string;
  quant: 'nf' | 'uniform' | 'ggml';
  block: number;
  method: PlanMethod;
  rank: number;
  alpha: number;
  rslora: boolean;
  targets: readonly TargetInfo[];
  bits: readonly number[];
  choices: readonly number[];
  /** The allocation: bits per target, and the rank and alpha when the planner chose the rank. */
  onApply: (bits: number[], chosen?: { rank: number; alpha: number }) => void;
}

/** What the prediction is, per method, in the panel's words. */
const BASIS: Record<PlanMethod, { sub: string; formula: string }> = {
  qlora: { sub: 'QLoRA: Q alone (B = 0), whatever the rank', formula: 'err = ‖W − Q‖ / ‖W‖: QLoRA starts the adapter at B = 0.' },
  loftq: { sub: 'one LoftQ step (T = 1); more steps only lower it', formula: 'err = ‖W − Q − s·B·A‖ / ‖W‖ after one LoftQ step.' },
};

export function PlannerPanel(props: PlannerPanelProps) {
  const { model, quant, block, method, rank, alpha, rslora, targets, bits, choices } = props;
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
  const [chooseRankAsked, setChooseRank] = useState(false);
  const [alphaRule, setAlphaRule] = useState<AlphaRule>('keep-scaling');
  const [applied, setApplied] = useState<string | null>(null);

  useEffect(() => {
    if (online && prepared === undefined) void load(request);
  }, [online, prepared, request, load]);
  // A finished profile job: fetch what it wrote.
  useEffect(() => {
    if (job?.state === 'done') void load(request);
  }, [job?.state, request, load]);

  const names = useMemo(() => targets.map((t) => t.name), [targets]);
  const shapes = useMemo(() => targets.map((t) => t.shape), [targets]);
  const prediction = useMemo(() => (prepared ? predict(prepared, names, bits, rank, method) : null), [prepared, names, bits, rank, method]);
  const cells = useMemo(
    () => (prediction ? targets.map((t, k) => ({ name: t.name, layer: t.layer, module: t.module, value: prediction.errors[k] })).filter((c) => Number.isFinite(c.value)) : []),
    [prediction, targets],
  );
  // QLoRA's initial error does not depend on the rank: there is nothing to choose it by.
  const chooseRank = chooseRankAsked && method === 'loftq';
  const scaleBits = scaleBitsOf(quant);
  // A budget in MiB is the quantized matrices plus the adapter: the same as average bits × weights.
  const params = targets.reduce((s, t) => s + t.shape[0] * t.shape[1], 0);
  const toBits = (v: number) => (unit === 'bits' ? v : (v * 2 ** 20 * 8) / params);
  const fromBits = (b: number) => (unit === 'bits' ? b : (b * params) / 8 / 2 ** 20);
  const unitText = unit === 'bits' ? 'bits / weight' : 'MiB';
  const smallestSide = Math.min(...targets.map((t) => Math.min(...t.shape)));
  const rankChoices = prepared ? candidateRanks(prepared.maxRank, smallestSide) : [];
  const ranks = chooseRank ? rankChoices : [rank];
  const range = targets.length > 0 && ranks.length > 0 ? budgetRange(shapes, choices, ranks, block, scaleBits) : null;
  const rangeText = range ? `${fromBits(range.min).toFixed(2)} to ${fromBits(range.max).toFixed(2)} ${unitText}` : '';
  const budgetValue = toBits(Number(budget));
  const budgetError =
    budget.trim() === '' || !range
      ? undefined
      : !(budgetValue > 0)
        ? `a number of ${unitText}`
        : budgetValue < range.min * (1 - 1e-9) || budgetValue > range.max * (1 + 1e-9)
          ? `outside what ${chooseRank ? 'these ranks' : `rank ${rank}`} can reach: ${rangeText}`
          : undefined;
  const missingRank = method === 'loftq' && prepared && rank > prepared.maxRank;
  const s = loraScaling(alpha, rank, rslora);

  const allocate = () => {
    if (!prepared) return;
    const plan = planBudget({ profile: prepared, names, choices, block, scaleBits, method, rank: chooseRank ? rankChoices : rank, budget: budgetValue });
    if (!plan.ok) {
      setApplied(plan.reason);
      return;
    }
    const mix = [...new Set(plan.bits)].sort((a, b) => a - b).join('/');
    const avg = `${fromBits(plan.average).toFixed(2)} ${unitText}`;
    if (chooseRank) {
      const newAlpha = alphaForRank(alphaRule, plan.rank, { alpha, rank, rslora });
      props.onApply(plan.bits, { rank: plan.rank, alpha: newAlpha });
      const why = alphaRule === 'keep-scaling' ? `keeping s = ${formatNum(s)}` : `α = r, so s = ${formatNum(loraScaling(newAlpha, plan.rank, rslora))}`;
      setApplied(`Applied: ${mix}-bit mix at rank ${plan.rank} (${avg}); α set to ${formatNum(newAlpha)}, ${why}. Predicted mean err ${formatNum(plan.prediction.mean)}.`);
    } else {
      props.onApply(plan.bits);
      setApplied(`Applied: ${mix}-bit mix at rank ${rank} (${avg}). Predicted mean err ${formatNum(plan.prediction.mean)}.`);
    }
  };

  return (
    <section className="panel" aria-label="Planner">
      <h2>Predicted error</h2>
      {prepared === undefined || loading ? (
        <p className="small muted">Looking for this model&apos;s profile…</p>
      ) : prepared === null ? (
        <>
          <p className="small muted" style={{ marginTop: 0 }}>
            Profile this model once (one pass over its weights per bit width) and the error of every matrix is predicted as you edit the method, bits and rank, before any run.
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
            <Stat label={`Predicted mean err (${method === 'qlora' ? 'QLoRA' : 'LoftQ'})`} value={missingRank ? '–' : formatNum(prediction?.mean)} sub={BASIS[method].sub} />
            <Stat label="Predicted worst err" value={missingRank ? '–' : formatNum(prediction?.worst?.err)} sub={prediction?.worst?.name.replace(/^model\.layers\./, 'layer ') ?? ''} />
          </div>
          {missingRank && <div className="note">The profile has singular values up to rank {prepared.maxRank}; profile again with a larger maximum rank to predict rank {rank}.</div>}
          {!missingRank && cells.length > 0 && <Heatmap cells={cells} valueLabel="predicted err" label="Predicted error heatmap" />}
          <p className="small muted">{BASIS[method].formula}</p>
          <div className="row budget-row">
            <TextField
              label={unit === 'bits' ? 'Budget: average bits per weight, adapter included' : 'Budget: MiB of quantized matrices and adapter'}
              value={budget}
              error={budgetError}
              hint={range ? `reachable: ${rangeText}` : undefined}
              placeholder={range ? fromBits(range.min).toFixed(2) : ''}
              onChange={(v) => {
                setBudget(v);
                setApplied(null);
              }}
              onEnter={() => {
                if (!budgetError && budget.trim() !== '' && !missingRank) allocate();
              }}
              className="grow"
            />
            <div className="row budget-controls">
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
                  setApplied(null);
                }}
              />
              <button type="button" disabled={!!budgetError || budget.trim() === '' || !!missingRank} onClick={allocate}>
                {chooseRank ? 'Allocate bits and rank' : 'Allocate bits'}
              </button>
            </div>
          </div>
          <label className="check small">
            <input type="checkbox" checked={chooseRank} disabled={method !== 'loftq'} onChange={(e) => setChooseRank(e.target.checked)} /> also choose the rank ({rankChoices.join(', ')})
            {method !== 'loftq' && <span className="muted"> — QLoRA&apos;s initial error does not depend on the rank</span>}
          </label>
          {chooseRank && (
            <div className="row small" style={{ marginTop: 6 }}>
              <span className="muted">When the rank changes:</span>
              <Segmented
                label="Alpha when the rank changes"
                value={alphaRule}
                options={[
                  { value: 'keep-scaling', label: `${ALPHA_RULE_LABELS['keep-scaling']} (s = ${formatNum(s)})` },
                  { value: 'alpha-equals-rank', label: `${ALPHA_RULE_LABELS['alpha-equals-rank']} (s = ${rslora ? '√r' : '1'})` },
                ]}
                onChange={setAlphaRule}
              />
            </div>
          )}
          {applied && (
            <div className="note small" role="status">
              {applied}
            </div>
          )}
        </>
      )}
      <ErrorNote error={error} />
    </section>
  );
}
