// A JSON-lines record is appended whole or not at all, and a torn tail is repaired on the next
// append instead of being glued to it (issue 23, item 9). The disk-full case itself (a write cut
// by the file-size limit) runs against the CLI in the fault suite.
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../test-support/tiny-model';
import { appendJsonLine } from './jsonl-append';

let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-jsonl-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const lines = (path: string) => readFileSync(path, 'utf8').split('\n');

describe('appendJsonLine', () => {
  it('creates the file and appends one line per record', async () => {
    const path = join(tmp, 'a.jsonl');
    await appendJsonLine(path, { step: 1 });
    await appendJsonLine(path, { step: 2 });
    expect(lines(path)).toEqual(['{"step":1}', '{"step":2}', '']);
  });

  it('drops a torn last record instead of gluing the next one to it', async () => {
    const path = join(tmp, 'torn.jsonl');
    writeFileSync(path, '{"step":1}\n{"step":2,"lo');
    await appendJsonLine(path, { step: 3 });
    expect(lines(path)).toEqual(['{"step":1}', '{"step":3}', '']);
    // Every line parses.
    for (const l of lines(path).filter((x) => x !== '')) expect(() => JSON.parse(l)).not.toThrow();
  });

  it('keeps a whole last record that only lacks its newline', async () => {
    const path = join(tmp, 'nonl.jsonl');
    writeFileSync(path, '{"step":1}\n{"step":2}');
    await appendJsonLine(path, { step: 3 });
    expect(lines(path)).toEqual(['{"step":1}', '{"step":2}', '{"step":3}', '']);
  });

  it('repairs a file that is one torn line, and a torn line longer than one read', async () => {
    const one = join(tmp, 'one.jsonl');
    writeFileSync(one, '{"st');
    await appendJsonLine(one, { step: 1 });
    expect(lines(one)).toEqual(['{"step":1}', '']);
    const long = join(tmp, 'long.jsonl');
    writeFileSync(long, `{"step":1}\n{"text":"${'x'.repeat(200_000)}`);
    await appendJsonLine(long, { step: 2 });
    expect(lines(long)).toEqual(['{"step":1}', '{"step":2}', '']);
  });

  it('a write that cannot happen leaves the file as it was and says why in one line', async () => {
    const path = join(tmp, 'missing-folder', 'm.jsonl');
    await expect(appendJsonLine(path, { step: 1 })).rejects.toThrow(/cannot write .*m\.jsonl: its folder does not exist/);
  });
});
