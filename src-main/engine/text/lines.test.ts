import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../errors';
import { makeTempDir } from '../../test-support/tiny-model';
import { readLines } from './lines';

let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-lines-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('readLines', () => {
  it('refuses a line longer than the cap instead of buffering it (one line, naming it)', async () => {
    const path = join(tmp, 'long.jsonl');
    await writeFile(path, `{"text": "short"}\n{"text": "${'x'.repeat(3_000_000)}"}\n`);
    const lines: string[] = [];
    const read = async () => {
      for await (const l of readLines(path, { bytesRead: 0 }, 1_000_000)) lines.push(l);
    };
    const e = await read().catch((x: Error) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/line 2 is longer than 1000000 characters/);
    expect(lines).toEqual(['{"text": "short"}']);
  });

  it('splits lines across chunk boundaries and drops \\r', async () => {
    const path = join(tmp, 'crlf.txt');
    const long = 'y'.repeat(200_000);
    await writeFile(path, `a\r\n${long}\nlast`);
    const lines: string[] = [];
    for await (const l of readLines(path, { bytesRead: 0 })) lines.push(l);
    expect(lines).toEqual(['a', long, 'last']);
  });
});
