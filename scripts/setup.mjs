// Makes a fresh clone runnable: installs the npm dependencies (skipping onnxruntime-node's
// CUDA download, which this environment cannot reach and the CPU engine does not need)
// and bundles the CLI. Idempotent and quick when nothing changed. Node built-ins only.
import { execSync } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

function newestIn(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(p) : statSync(p).mtimeMs);
  }
  return newest;
}

const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || mtime(join(root, 'package-lock.json')) > mtime(installed)) {
  console.error('setup: installing npm dependencies (npm ci)…');
  execSync('npm ci --no-audit --no-fund', { cwd: root, stdio: 'inherit', env });
}

const bundle = join(root, 'dist', 'cli.cjs');
if (mtime(bundle) < newestIn(join(root, 'src-main'))) {
  execSync('node scripts/build-cli.mjs', { cwd: root, stdio: 'inherit', env });
}
