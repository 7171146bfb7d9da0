// Entry point of the bundled CLI (dist/cli.cjs), and of the job threads `loftq serve` starts
// from it (engine/jobs/job-thread.ts).
import { enableJobThreads, isJobThread, serveJobThread } from '../engine/jobs/job-thread';
import { main } from './main';

if (isJobThread()) serveJobThread();
else start();

function start(): void {
  // `loftq … | head` closes stdout early: that is the reader's choice, not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });

  enableJobThreads(__filename);
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
