// Entry point of the bundled CLI (dist/cli.cjs).
import { main } from './main';

// `loftq … | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).then((code) => process.exit(code));
