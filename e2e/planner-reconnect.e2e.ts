// Web mode in Chromium, for two promises of issue 19: the planner predicts what the chosen
// method will do (QLoRA: ‖W − Q‖, which the run then measures), and an open tab survives a
// restart of the engine — same port and token, the tab reconnects by itself, the state is
// fetched again, and a job that was running when the engine died is shown as interrupted.
// Screenshots (1440 and 900 px) of the views this touches go to e2e/artifacts/planner-*.png.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ARTIFACTS, haveChromium, openBrowser, startServer } from './support/harness';

let tmp: string;
let runsDir: string;
let configHome: string;
let server: { child: ChildProcess; url: string };
let context: BrowserContext;
let page: Page;

const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `planner-${name}.png`), fullPage: true });
/** The view scrolled to `region` (the app scrolls its main pane, not the page), at 1440 and 900 px. */
async function shotsAt(name: string, region: ReturnType<Page['locator']>): Promise<void> {
  for (const width of [1440, 900]) {
    await page.setViewportSize({ width, height: 900 });
    await region.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, `planner-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}
const nav = (view: string) => page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: view, exact: true }).click();
const planner = () => page.getByRole('region', { name: 'Planner' });
/** The value of a stat whose label starts with `label`. */
async function stat(scope: ReturnType<Page['locator']>, label: string): Promise<number> {
  const s = scope.locator('.stat', { has: page.locator('.label', { hasText: label }) }).first();
  return Number(await s.locator('.value').textContent());
}

async function stopServer(signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill(signal);
  await exited;
}

/** One StudioApi call over the server's WebSocket, as another client would make it. */
async function call(method: string, params: unknown[]): Promise<unknown> {
  const u = new URL(server.url);
  const ws = new WebSocket(`ws://${u.host}/api?token=${u.searchParams.get('token')}`);
  await new Promise((ok, fail) => {
    ws.once('open', ok);
    ws.once('error', fail);
  });
  try {
    return await new Promise((ok, fail) => {
      ws.on('message', (data) => {
        const m = JSON.parse(String(data));
        if (m.kind !== 'response' || m.id !== 1) return;
        if (m.ok) ok(m.result);
        else fail(new Error(m.error.message));
      });
      ws.send(JSON.stringify({ kind: 'request', id: 1, method, params }));
    });
  } finally {
    ws.close();
  }
}

beforeAll(async () => {
  if (!haveChromium()) throw new Error('Chromium is missing: `npm test` installs it (apt package chromium), or set CHROMIUM_PATH');
  tmp = mkdtempSync(join(tmpdir(), 'loftq-e2e-planner-'));
  runsDir = join(tmp, 'runs');
  configHome = join(tmp, 'config');
  mkdirSync(runsDir);
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer(runsDir, configHome);
  ({ context, page } = await openBrowser(tmp, { width: 1440, height: 900 }));
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.goto(server.url);
});

afterAll(async () => {
  await context?.close();
  if (server && server.child.exitCode === null) await stopServer('SIGINT');
  rmSync(tmp, { recursive: true, force: true });
});

describe('planner and reconnection (web mode)', () => {
  it("predicts QLoRA by ‖W − Q‖ — what the QLoRA run then measures — apart from LoftQ's one step", async () => {
    await page.getByRole('button', { name: 'Open demo model' }).first().click();
    await page.getByRole('region', { name: 'Model summary' }).waitFor();
    await nav('Quantize');
    const form = page.getByRole('form', { name: 'Quantize options' });
    await form.getByRole('group', { name: 'Bits' }).getByRole('button', { name: '2-bit', exact: true }).click();
    await planner().getByRole('button', { name: 'Profile this model' }).click();
    await planner().getByText('Predicted mean err (LoftQ)').waitFor({ timeout: 120_000 });
    const loftq = await stat(planner(), 'Predicted mean err');
    await form.getByRole('group', { name: 'Method' }).getByRole('button', { name: 'QLoRA', exact: true }).click();
    await planner().getByText('Predicted mean err (QLoRA)').waitFor();
    const qlora = await stat(planner(), 'Predicted mean err');
    expect(qlora).toBeGreaterThan(loftq);
    // The rank does not move QLoRA's prediction (B = 0), and the planner will not choose one for it.
    await form.getByLabel('Rank r').fill('4');
    expect(await stat(planner(), 'Predicted mean err')).toBe(qlora);
    await form.getByLabel('Rank r').fill('16');
    await expect(planner().getByRole('checkbox', { name: /also choose the rank/ }).isDisabled()).resolves.toBe(true);
    // A budget past what 8 bits everywhere reach is refused with the range.
    await planner().getByLabel(/^Budget: average bits/).fill('100');
    await expect(planner().getByRole('alert').textContent()).resolves.toMatch(/can reach: \d\.\d\d to \d+\.\d\d bits \/ weight/);
    await shotsAt('quantize-budget-refused', planner());
    await planner().getByLabel(/^Budget: average bits/).fill('');
    // LoftQ choosing the rank: the alpha rule is offered and what was done is said.
    await form.getByRole('group', { name: 'Method' }).getByRole('button', { name: 'LoftQ', exact: true }).click();
    await planner().getByRole('checkbox', { name: /also choose the rank/ }).check();
    await planner().getByLabel(/^Budget: average bits/).fill('7.5');
    await planner().getByRole('button', { name: 'Allocate bits and rank' }).click();
    await planner().getByText(/^Applied: .* α set to [\d.]+, keeping s = 1/).waitFor();
    await shotsAt('quantize-planner', planner());
    await form.getByRole('group', { name: 'Method' }).getByRole('button', { name: 'QLoRA', exact: true }).click();
    await form.getByLabel('Rank r').fill('16');
    await form.getByLabel('LoRA alpha').fill('16');
    await page.getByRole('button', { name: 'Reset grid' }).click();
    await form.getByRole('group', { name: 'Bits' }).getByRole('button', { name: '2-bit', exact: true }).click();
    expect(await stat(planner(), 'Predicted mean err')).toBe(qlora);

    await form.getByLabel('Run name').fill('qlora-2bit');
    await form.getByRole('button', { name: /^(Run|Queue run)$/ }).click();
    await page.getByRole('region', { name: 'Run progress' }).getByRole('heading', { name: /^qlora-2bit\s+done$/ }).waitFor({ timeout: 120_000 });
    await page.getByRole('button', { name: 'Open layer error →' }).click();
    const summary = page.getByRole('region', { name: 'Run summary' });
    await summary.waitFor();
    const measured = await stat(summary, 'Mean err_init');
    // Both shown to 4 significant digits: QLoRA's prediction is exact.
    expect(Math.abs(measured / qlora - 1)).toBeLessThan(1e-3);
    await page.getByText(/Mean measured \/ predicted: 1\.0000/).waitFor();
    await page.getByText(/QLoRA starts the adapter at B = 0, so all of W − Q is left/).waitFor();
    await shotsAt('layer-error-top', summary);
    await shotsAt('layer-error-spectrum', page.getByRole('heading', { name: /^Singular values of W − Q/ }));
    await shotsAt('layer-error-predicted', page.getByRole('heading', { name: 'Predicted vs measured err_init' }));

    // A LoftQ run beside it: its spectrum goes past r (what the adapter leaves), its prediction is one step.
    await nav('Quantize');
    await form.getByRole('group', { name: 'Method' }).getByRole('button', { name: 'LoftQ', exact: true }).click();
    await form.getByLabel('Run name').fill('loftq-2bit');
    await form.getByRole('button', { name: /^(Run|Queue run)$/ }).click();
    await page.getByRole('region', { name: 'Run progress' }).getByRole('heading', { name: /^loftq-2bit\s+done$/ }).waitFor({ timeout: 120_000 });
    await page.getByRole('button', { name: 'Open layer error →' }).click();
    await page.getByText(/σ1…σ16 are what the rank-16 adapter holds \(s·B·A\); right of the dashed line, what it leaves in W − Q − s·B·A/).waitFor();
    await shotsAt('layer-error-loftq-spectrum', page.getByRole('heading', { name: /^Singular values of W − Q/ }));
  });

  it('an open tab reconnects after the engine restarts on the same port and token; a job it was running is interrupted', async () => {
    const info = (await call('info', [])) as { demoData: { train: string } };
    const runs = (await call('listRuns', [])) as Array<{ dir: string; name: string }>;
    const run = runs.find((r) => r.name === 'qlora-2bit')!.dir;
    // A fine-tuning long enough to be running when the engine dies.
    await call('startTrain', [{ run, data: info.demoData.train, steps: 5000, seqLen: 64, batch: 1, evalEvery: 5000 }]);
    const tray = page.getByRole('region', { name: 'Jobs' });
    const trainJob = tray.locator('[aria-label="train job qlora-2bit"]');
    await trainJob.getByText('running', { exact: true }).waitFor({ timeout: 60_000 });
    // Its first steps: the engine has long since written down that it runs.
    await trainJob.getByText(/step \d+\/5000/).waitFor({ timeout: 60_000 });
    const before = server.url;

    await stopServer('SIGKILL'); // a crash: nothing is marked on the way out
    const banner = page.getByRole('alert').filter({ hasText: /Not connected to the engine|Reconnecting to the engine/ });
    await banner.waitFor({ timeout: 15_000 });
    await shot('disconnected-1440');

    server = await startServer(runsDir, configHome, []);
    expect(server.url).toBe(before);
    await page.getByRole('status').filter({ hasText: 'Reconnected to the engine' }).waitFor({ timeout: 30_000 });
    await expect(banner.count()).resolves.toBe(0);
    await trainJob.getByText('interrupted', { exact: true }).waitFor({ timeout: 10_000 });
    await expect(trainJob.getByText(/interrupted: the engine stopped while this job was running/).count()).resolves.toBe(1);
    await shot('reconnected-1440');
    // The tab works as before: the runs are there, and the engine answers.
    await nav('Runs');
    await page.getByText('qlora-2bit').first().waitFor();
  });
});
