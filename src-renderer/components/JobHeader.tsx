// The top of a job's panel: what it is, its state, a way to stop it while it runs, its
// progress, and why it failed.
import type { ReactNode } from 'react';
import type { JobInfo } from '../../src-main/api/contract';
import { isLive, useJobs } from '../stores/jobs';
import { ProgressBar, StatusBadge } from './common';

export function JobHeader(props: { job: JobInfo; title: ReactNode; stopLabel: string; progressLabel: string }) {
  const { job } = props;
  const cancel = useJobs((s) => s.cancel);
  const live = isLive(job);
  return (
    <>
      <div className="row" style={{ marginBottom: 8 }}>
        <h2 className="grow">
          {props.title} <StatusBadge status={job.state} />
        </h2>
        {live && (
          <button type="button" className="danger" onClick={() => void cancel(job.id).catch(() => undefined)}>
            {props.stopLabel}
          </button>
        )}
      </div>
      {live && <ProgressBar value={job.progress} label={props.progressLabel} />}
      {job.state === 'failed' && <div className="note error">{job.error ?? job.label}</div>}
    </>
  );
}
