// Test support: the CLI run under injected faults. A file-size limit (RLIMIT_FSIZE, with
// SIGXFSZ ignored so that writes fail with EFBIG instead of killing the process) stands in
// for a full disk: a write crossing it is cut short exactly as ENOSPC cuts it. Linux and
// macOS only (bash's ulimit).
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CLI, type CliResult } from './cli';

const PEAK_RSS_PRELOAD = resolve('src-main/test-support/peak-rss.cjs');

function result(r: ReturnType<typeof spawnSync>): CliResult {
  const stdout = String(r.stdout);
  return { code: r.status ?? -1, stdout, stderr: String(r.stderr), events: stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Runs `loftq args` where no file may grow past `kib` KiB. */
export function loftqWithFileLimit(kib: number, ...args: string[]): CliResult {
  const script = `trap '' XFSZ; ulimit -f ${Math.floor(kib)}; exec "$0" "$@"`;
  return result(spawnSync('bash', ['-c', script, process.execPath, CLI, ...args], { encoding: 'utf8', timeout: 120_000 }));
}

/** Runs `loftq args` and reports the process's peak resident memory (MiB) and wall time (s). */
export function loftqMeasured(...args: string[]): CliResult & { peakRssMiB: number; seconds: number } {
  const file = join(tmpdir(), `loftq-peak-${process.pid}-${Date.now()}`);
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--require', PEAK_RSS_PRELOAD, CLI, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, LOFTQ_PEAK_RSS_FILE: file } });
  const seconds = (performance.now() - started) / 1000;
  let peakRssMiB = NaN;
  try {
    peakRssMiB = Number(readFileSync(file, 'utf8')) / 1024;
  } finally {
    rmSync(file, { force: true });
  }
  return { ...result(r), peakRssMiB, seconds };
}
