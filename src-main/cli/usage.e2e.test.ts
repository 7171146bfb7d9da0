// The CLI's usage and errors as a person meets them: `loftq <command> --help` is that command's
// help; a usage error is one line (the error, and where the options are listed), never the
// whole usage; no literal "\n", no leading blank line; and the README's synopsis names every
// option the commands take.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loftq } from '../test-support/cli';
import { COMMAND_NAMES, SYNOPSIS } from './usage';

describe('loftq usage', () => {
  it('`loftq <command> --help` prints that command\'s usage and what its options mean', () => {
    for (const command of COMMAND_NAMES) {
      const r = loftq(command, '--help');
      expect(r.code, command).toBe(0);
      expect(r.stdout.startsWith(`usage: loftq ${command} `), command).toBe(true);
      for (const other of COMMAND_NAMES) if (other !== command) expect(r.stdout, `${command} --help names ${other}`).not.toMatch(new RegExp(`^\\s*${other} `, 'm'));
    }
    expect(loftq('quantize', '--help').stdout).toMatch(/--bits-map\s+comma-separated/);
    expect(loftq('help', 'train').stdout.startsWith('usage: loftq train ')).toBe(true);
    // --help wins over an incomplete or wrong command line.
    expect(loftq('quantize', 'model', '--bogus', '--help').code).toBe(0);
  });

  it('a usage error is one line with a pointer to --help, exit 2', () => {
    for (const args of [['quantize', 'm'], ['quantize', 'm', '--out', 'x', '--bogus'], ['eval', 'm'], ['serve', 'extra'], ['frobnicate']]) {
      const r = loftq(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n').filter(Boolean), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^loftq: .* \(loftq (\w+ )?--help lists the options\)\n$/);
      expect(r.stdout).toBe('');
    }
    expect(loftq('quantize', 'm', '--out', 'x', '--bogus').stderr).toMatch(/^loftq: unknown option --bogus /);
  });

  it('a value that starts with a dash gets a one-line explanation, no literal \\n', () => {
    const r = loftq('quantize', 'm', '--out', 'x', '--rank', '-3');
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/\\n/);
    expect(r.stderr).toBe("loftq: --rank needs a value; to give one that starts with '-', write --rank=-3 (loftq quantize --help lists the options)\n");
  });

  it('errors start on the first line (no blank line before them)', () => {
    const r = loftq('inspect', '/no/such/model-folder');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^loftq: /);
    const j = loftq('inspect', '/no/such/model-folder', '--json');
    expect(j.stderr).toMatch(/^loftq: /);
    expect(JSON.parse(j.stdout.trim())).toMatchObject({ type: 'error', code: 1 });
  });

  it("the README's synopsis names every command and every option the commands take", () => {
    const readme = readFileSync('README.md', 'utf8');
    const block = /## The `loftq` command[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    for (const command of COMMAND_NAMES) {
      const entry = new RegExp(`npx loftq ${command} [^\\n]*(\\n +[^\\n]*)*`).exec(block)?.[0] ?? '';
      expect(entry, `README synopsis of ${command}`).not.toBe('');
      for (const flag of SYNOPSIS[command].match(/--[a-z][a-z-]*/g) ?? []) expect(entry, `README: ${command} ${flag}`).toContain(flag);
    }
  });
});
