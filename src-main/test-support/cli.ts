// Runs the bundled CLI (dist/cli.cjs) as a child process, the way users run `loftq`.
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

// Tests run from the repository root (vitest's root).
export const CLI = resolve('dist/cli.cjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON lines (when --json). */
  events: Array<Record<string, unknown>>;
}

function parseLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function loftq(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, events: parseLines(r.stdout) };
}

/** Starts the CLI with --json and calls `onEvent` for each event line as it arrives. */
export function loftqAsync(args: string[], onEvent: (e: Record<string, unknown>, child: ReturnType<typeof spawn>) => void): Promise<CliResult> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith('{')) onEvent(JSON.parse(line), child);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr, events: parseLines(stdout) }));
  });
}
