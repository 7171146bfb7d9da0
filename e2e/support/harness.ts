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

function startServer(runsDir: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [resolve('dist/cli.cjs'), 'serve', '--port', '0', '--runs', runsDir], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  const { child, url } = await startServer(runsDir);
  // A fresh profile each time (launchPersistentContext is how playwright takes a user-data-dir).
  const context = await chromium.launchPersistentContext(join(tmp, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
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

export const haveChromium = (): boolean => existsSync(CHROMIUM);
