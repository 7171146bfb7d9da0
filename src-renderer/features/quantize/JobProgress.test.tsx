import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { useJobs } from '../../stores/jobs';
import { job } from '../../test/fake-api';
import { JobProgress } from './JobProgress';

describe('live quantize progress', () => {
  afterEach(cleanup);

  it("counts the engine's finished matrices right after a reload, before any event arrives", () => {
    // What listJobs returns after a reload mid-run: the job at matrix 39 of 112; this page saw no event.
    useJobs.setState({ jobs: { j: job({ id: 'j', state: 'running', progress: 39 / 112, done: 39, total: 112, label: 'model.layers.5.mlp.up_proj (40/112)' }) }, order: ['j'], progress: {}, dismissed: {} });
    render(<JobProgress jobId="j" />);
    expect(screen.getByText(/39 of 112 matrices done/)).toBeTruthy();
  });
});
