#!/usr/bin/env node
// The `loftq` command: the bundled CLI built by `npm run build` (run by `npm ci`'s prepare).
require('../dist/cli.cjs');
