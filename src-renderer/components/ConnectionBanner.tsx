// The connection to the engine, where it is seen: a bar at the top of every view while the
// engine cannot be reached — why, when the next automatic attempt starts (the transport backs
// off 0.5 s → 10 s), a button to try now — and a moment's "Reconnected" once it is back and
// the runs, jobs and model have been fetched again (stores/start.ts).
import { useEffect, useRef, useState } from 'react';
import { api } from '../stores/api';
import { useConnection } from '../stores/connection';

/** How long "Reconnected" stays up. */
const RECONNECTED_MS = 4000;

export function ConnectionBanner() {
  const status = useConnection((s) => s.status);
  const transport = useConnection((s) => s.transport);
  const [now, setNow] = useState(Date.now());
  const [back, setBack] = useState(false);
  const wasDown = useRef(false);

  useEffect(() => {
    if (status.state !== 'closed' || !status.retryAt) return;
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [status.state, status.retryAt]);
  useEffect(() => {
    if (status.state === 'closed' || (status.state === 'connecting' && status.attempt > 0)) wasDown.current = true;
    if (status.state !== 'open' || !wasDown.current) return;
    wasDown.current = false;
    setBack(true);
    const t = setTimeout(() => setBack(false), RECONNECTED_MS);
    return () => clearTimeout(t);
  }, [status.state, status.attempt]);

  if (transport === 'ipc') return null;
  if (status.state === 'open') {
    return back ? (
      <div className="conn-banner ok" role="status">
        Reconnected to the engine; runs and jobs are up to date.
      </div>
    ) : null;
  }
  // The first connection of a page: nothing to say yet.
  if (status.state === 'connecting' && status.attempt === 0) return null;
  const waiting = status.state === 'closed' && status.retryAt !== undefined;
  const seconds = waiting ? Math.max(0, Math.ceil((status.retryAt! - now) / 1000)) : 0;
  return (
    <div className="conn-banner down" role="alert">
      <strong>{status.state === 'connecting' ? 'Reconnecting to the engine…' : 'Not connected to the engine.'}</strong>{' '}
      {status.error && <span>{status.error.replace(/\.$/, '')}.</span>}{' '}
      {waiting && <span>Trying again in {seconds} s (attempt {status.attempt + 1}); your work here is kept.</span>}
      {waiting && (
        <button type="button" className="small" onClick={() => api().reconnect()}>
          Retry now
        </button>
      )}
    </div>
  );
}
