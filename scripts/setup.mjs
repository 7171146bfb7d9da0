// Makes a fresh clone runnable: installs the npm dependencies (skipping onnxruntime-node's
// CUDA download, which this environment cannot reach and the CPU engine does not need),
// bundles the CLI and builds the dashboard when their sources changed, and with --browser
// installs Debian's Chromium for the end-to-end tests. Idempotent; Node built-ins only.
import { execSync } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
// Electron's binary comes from GitHub, which this environment cannot reach; a plain `npm ci`
// on a connected machine still downloads it.
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ELECTRON_SKIP_BINARY_DOWNLOAD: '1' };
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit', env });

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
  run('npm ci --no-audit --no-fund');
}

if (mtime(join(root, 'dist', 'cli.cjs')) < newestIn(join(root, 'src-main'))) run('node scripts/build-cli.mjs');

const rendererConfig = join(root, 'vite.renderer.config.ts');
if (existsSync(rendererConfig)) {
  // The dashboard also bundles the engine's pure domain rules (src-main/engine/rules/, errors.ts).
  const engine = join(root, 'src-main', 'engine');
  const sources = Math.max(newestIn(join(root, 'src-renderer')), mtime(rendererConfig), mtime(join(root, 'src-main', 'api', 'contract.ts')), newestIn(join(engine, 'rules')), mtime(join(engine, 'errors.ts')));
  if (mtime(join(root, 'out', 'renderer', 'index.html')) < sources) {
    console.error('setup: building the dashboard…');
    run('npx vite build --config vite.renderer.config.ts --logLevel warn');
  }
}

if (process.argv.includes('--browser') && !existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium')) {
  if (process.getuid?.() === 0) {
    console.error("setup: installing Debian's Chromium for the end-to-end tests…");
    run('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null');
  } else {
    console.error('setup: Chromium is missing and this is not root: install the chromium package (or set CHROMIUM_PATH) for the end-to-end tests');
  }
}
