// Starts `loftq serve` on a free port with a fresh runs folder and Debian's Chromium driven by
// playwright-core, the way a user opens the printed URL.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = resolve('e2e/artifacts');

export interface Harness {
  url: string;
  runsDir: string;
  tmp: string;
  context: BrowserContext;
  page: Page;
  stop(): Promise<void>;
}

/**
 * `loftq serve` on the runs folder, its settings (port, token) in `configHome` (as
 * XDG_CONFIG_HOME): a second start with the same folder comes back at the same address.
 */
export function startServer(runsDir: string, configHome: string, extraArgs: string[] = ['--port', '0']): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((ok, fail) => {
    const env = { ...process.env, XDG_CONFIG_HOME: configHome };
    const child = spawn(process.execPath, [resolve('dist/cli.cjs'), 'serve', ...extraArgs, '--runs', runsDir], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    const timer = setTimeout(() => fail(new Error(`loftq serve printed no URL:\n${out}`)), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok({ child, url: m[1] });
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk));
    child.once('exit', (code) => fail(new Error(`loftq serve exited with ${code}:\n${out}`)));
  });
}

export async function startHarness(viewport = { width: 1280, height: 800 }): Promise<Harness> {
  const tmp = mkdtempSync(join(tmpdir(), 'loftq-e2e-'));
  const runsDir = join(tmp, 'runs');
  mkdirSync(runsDir);
  mkdirSync(ARTIFACTS, { recursive: true });
  const { child, url } = await startServer(runsDir, join(tmp, 'config'));
  const { context, page } = await openBrowser(tmp, viewport);
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.goto(url);
  return {
    url,
    runsDir,
    tmp,
    context,
    page,
    async stop() {
      await context.close();
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium with a fresh profile in `tmp` (launchPersistentContext is how playwright takes a user-data-dir). */
export async function openBrowser(tmp: string, viewport: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await chromium.launchPersistentContext(join(tmp, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return { context, page: context.pages()[0] ?? (await context.newPage()) };
}

export const haveChromium = (): boolean => existsSync(CHROMIUM);
