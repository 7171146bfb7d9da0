// `npm start`: the desktop app where an Electron binary is installed; otherwise (as here, where
// Electron cannot be downloaded) the same dashboard served on localhost, with the URL printed.
// Either way the bundled demo model is one click away.
import { execSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
execSync('node scripts/setup.mjs', { cwd: root, stdio: 'inherit' });

function electronBinary() {
  try {
    const path = createRequire(import.meta.url)('electron'); // the binary's path, once installed
    return typeof path === 'string' && existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

const electron = electronBinary();
const child = electron
  ? (execSync('npx electron-vite build --logLevel warn', { cwd: root, stdio: 'inherit' }), spawn(electron, ['.'], { cwd: root, stdio: 'inherit' }))
  : spawn(process.execPath, ['bin/loftq.cjs', 'serve', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
if (!electron) console.error('(Electron is not installed here: serving the dashboard in web mode.)');
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code) => process.exit(code ?? 0));
