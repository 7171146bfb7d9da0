import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { ModelProfile } from '../../../src-main/api/contract';
import { errorAt, prepareProfile } from '../../../src-main/engine/rules/planner';
import { profileKey, usePlanner } from '../../stores/planner';
import { runSummary } from '../../test/fake-api';
import { PredictedVsMeasured } from './PredictedVsMeasured';

/** A profile of 64 × 64 matrices with ‖W‖² = 10 and ‖W − Q‖² = 3 + k at 2 bits. */
function profileOf(names: string[]): ModelProfile {
  return {
    format: 'loftq-profile/1',
    model: { path: '/m/demo', identity: 'x' },
    quant: 'nf',
    block: 64,
    max_rank: 16,
    seconds: 0,
    matrices: names.map((name, k) => ({ name, shape: [64, 64], w_sq: 10, bits: { '2': { err_sq: 3 + k, sv: Array.from({ length: 16 }, (_, i) => 1 / (i + 1)) } } })),
  };
}

describe('predicted vs measured', () => {
  afterEach(cleanup);

  it("plots each matrix's one-step prediction against the run's measured error, with their mean ratio", () => {
    const names = ['model.layers.0.self_attn.q_proj', 'model.layers.1.self_attn.q_proj'];
    const prepared = prepareProfile(profileOf(names));
    usePlanner.setState({ profiles: { [profileKey({ model: '/m/demo', quant: 'nf', block: 64 })]: prepared }, loading: {}, jobs: {}, error: null });
    const run = runSummary('loftq-2bit');
    run.record.model = { path: '/m/demo' };
    const layer = (name: string, i: number, scale: number) => ({ name, shape: [64, 64] as [number, number], bits: 2, method: 'loftq', err_q: 0.6, err_init: errorAt(prepared, i, 2, 16, 'loftq') * scale, step_errors: [], residual_top_sv: [], seconds: 0 });
    render(<PredictedVsMeasured run={run} layers={[layer(names[0], 0, 0.98), layer(names[1], 1, 0.96)]} />);
    expect(screen.getByText('Predicted vs measured err_init')).toBeTruthy();
    expect(screen.getByText(/Mean measured \/ predicted: 0\.9700/)).toBeTruthy();
  });

  it("predicts a QLoRA run by QLoRA's error, ‖W − Q‖, not by LoftQ's step", () => {
    const name = 'model.layers.0.self_attn.q_proj';
    const prepared = prepareProfile(profileOf([name]));
    usePlanner.setState({ profiles: { [profileKey({ model: '/m/demo', quant: 'nf', block: 64 })]: prepared }, loading: {}, jobs: {}, error: null });
    const run = runSummary('qlora-2bit', { method: 'qlora' });
    run.record.model = { path: '/m/demo' };
    // A QLoRA run measures err_init = err_q = ‖W − Q‖/‖W‖ = √(3/10).
    const errQ = Math.sqrt(3 / 10);
    render(<PredictedVsMeasured run={run} layers={[{ name, shape: [64, 64], bits: 2, method: 'qlora', err_q: errQ, err_init: errQ, step_errors: [errQ], residual_top_sv: [], seconds: 0 }]} />);
    expect(screen.getByText(/Mean measured \/ predicted: 1\.0000/)).toBeTruthy();
    expect(screen.getByText(/QLoRA: Q alone/)).toBeTruthy();
  });
});
