import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteFile } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectUserError } from '../../test-support/expect-user-error';
import { makeTempDir } from '../../test-support/tiny-model';
import { documentsOf } from '../../test-support/documents';
import { openTextDataset } from './datasets';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('loftq-parquet-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const all = documentsOf;

const texts = ['first document', null, 'second\ndocument', '', 'third ✓'];
const bodies = ['a', 'b', 'c', 'd', 'e'];

function write(name: string, codec: 'UNCOMPRESSED' | 'SNAPPY' | 'GZIP'): string {
  const filename = join(dir, name);
  parquetWriteFile({
    filename,
    codec,
    compressors: { GZIP: (input) => gzipSync(input) },
    rowGroupSize: 2, // several row groups, one of them partial
    columnData: [
      { name: 'text', data: texts, type: 'STRING' },
      { name: 'body', data: bodies, type: 'STRING' },
      { name: 'n', data: [1, 2, 3, 4, 5], type: 'INT32' },
    ],
  });
  return filename;
}

describe('.parquet', () => {
  it.each(['UNCOMPRESSED', 'SNAPPY', 'GZIP'] as const)('reads the text column (%s), skipping nulls and empties', async (codec) => {
    const p = write(`${codec}.parquet`, codec);
    expect(await all(openTextDataset(p))).toEqual(['first document', 'second\ndocument', 'third ✓']);
    expect(await all(openTextDataset(p, { field: 'body' }))).toEqual(bodies);
  });

  it('reads row group by row group', async () => {
    // ~1.5 MB of unrepetitive text in 8 row groups: the first document must come after
    // the footer and the first group only.
    const rows = 4000;
    const data = Array.from({ length: rows }, (_, i) => `${i} ` + Math.random().toString(36).repeat(30));
    const filename = join(dir, 'big.parquet');
    parquetWriteFile({ filename, codec: 'UNCOMPRESSED', rowGroupSize: rows / 8, columnData: [{ name: 'text', data, type: 'STRING' }] });
    const size = (await stat(filename)).size;
    const ds = openTextDataset(filename);
    const it = ds[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ text: data[0], first: true });
    expect(ds.bytesRead).toBeLessThan(size / 4);
    let count = 1;
    for (let r = await it.next(); !r.done; r = await it.next()) count++;
    expect(count).toBe(rows);
  });

  it('names a missing column, a non-text column, and a file that is not parquet', async () => {
    const p = write('cols.parquet', 'SNAPPY');
    await expectUserError(all(openTextDataset(p, { field: 'content' })), /cols\.parquet: no column "content" \(columns: text, body, n\)/);
    await expectUserError(all(openTextDataset(p, { field: 'n' })), /cols\.parquet: column "n" is not a text column \(it is INT32\)/);
    const junk = join(dir, 'junk.parquet');
    await writeFile(junk, 'definitely not parquet');
    await expectUserError(all(openTextDataset(junk)), /junk\.parquet: not a readable parquet file/);
    await expectUserError(all(openTextDataset(join(dir, 'none.parquet'))), /cannot read .*none\.parquet: not found/);
  });
});
