// The same flow through the Electron app, where ELECTRON_EXEC_PATH points at a real Electron
// binary (it cannot be downloaded in our CI, so there this file reports itself skipped).
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { _electron, type ElectronApplication } from 'playwright-core';
import { afterAll, beforeAll, describe } from 'vitest';
import { dashboardFlow, type FlowContext } from './support/flow';

const electron = process.env.ELECTRON_EXEC_PATH;
let app: ElectronApplication;
let context: FlowContext;

describe.skipIf(!electron)('Electron app', () => {
  beforeAll(async () => {
    execSync('npx electron-vite build --logLevel warn', { stdio: 'inherit' });
    const tmp = mkdtempSync(join(tmpdir(), 'loftq-electron-'));
    const runsDir = join(tmp, 'runs');
    app = await _electron.launch({ executablePath: electron!, args: [resolve('.')], env: { ...process.env, LOFTQ_RUNS_DIR: runsDir } });
    const page = await app.firstWindow();
    await page.setViewportSize({ width: 1280, height: 800 });
    context = {
      page,
      runsDir,
      tmp,
      answerDialog: (path) => app.evaluate(({ dialog }, chosen) => {
        dialog.showOpenDialog = (async () => ({ canceled: false, filePaths: [chosen] })) as typeof dialog.showOpenDialog;
      }, path),
    };
  });

  afterAll(async () => {
    await app?.close();
    if (context) rmSync(context.tmp, { recursive: true, force: true });
  });

  dashboardFlow('dashboard (Electron)', () => context, 'electron-');
});
