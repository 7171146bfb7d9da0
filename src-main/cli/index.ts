// Entry point of the bundled CLI (dist/cli.cjs).
import { main } from './main';

main(process.argv.slice(2)).then((code) => process.exit(code));
