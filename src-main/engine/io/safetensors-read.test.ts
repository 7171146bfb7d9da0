import { open, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors, readTensorF32, readTensorRaw } from './safetensors-read';
import { makeTempDir } from '../../test-support/tiny-model';
import { expectUserError } from '../../test-support/expect-user-error';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let counter = 0;
/** A file with the given header (object or raw text) and data section; `len` overrides the prefix. */
async function rawFile(header: unknown, data: Uint8Array | number = 0, len?: bigint): Promise<string> {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = new TextEncoder().encode(text);
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const buf = new Uint8Array(8 + h.length + body.length);
  new DataView(buf.buffer).setBigUint64(0, len ?? BigInt(h.length), true);
  buf.set(h, 8);
  buf.set(body, 8 + h.length);
  const path = join(dir, `f${counter++}.safetensors`);
  await writeFile(path, buf);
  return path;
}


const t = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

describe('openSafetensors', () => {
  it('reads a valid header with metadata and absolute offsets', async () => {
    const path = await rawFile(
      { __metadata__: { format: 'pt' }, a: t('F32', [2, 2], [0, 16]), b: t('I8', [3], [16, 19]), e: t('F16', [0, 5], [19, 19]) },
      19,
    );
    const f = await openSafetensors(path);
    expect(f.metadata).toEqual({ format: 'pt' });
    const a = f.tensors.get('a');
    expect(a).toMatchObject({ name: 'a', dtype: 'F32', shape: [2, 2], begin: f.dataStart, end: f.dataStart + 16 });
    expect(f.tensors.get('b')?.begin).toBe(f.dataStart + 16);
    expect((await readTensorF32(f, 'e')).length).toBe(0);
  });

  it('tolerates holes between tensors and trailing bytes', async () => {
    const path = await rawFile({ a: t('U8', [2], [4, 6]), b: t('U8', [1], [10, 11]) }, 16);
    const f = await openSafetensors(path);
    expect(f.tensors.size).toBe(2);
  });

  it('rejects a missing file, a folder and a short file', async () => {
    await expectUserError(openSafetensors(join(dir, 'nope.safetensors')), /nope\.safetensors: not found/);
    await expectUserError(openSafetensors(dir), /is a directory/);
    const short = join(dir, 'short.safetensors');
    await writeFile(short, new Uint8Array(5));
    await expectUserError(openSafetensors(short), /shorter than the 8-byte/);
  });

  it('rejects absurd header lengths', async () => {
    await expectUserError(openSafetensors(await rawFile({}, 0, 1000n)), /header length 1000 exceeds the file size/);
    await expectUserError(openSafetensors(await rawFile({}, 0, 2n ** 63n)), /exceeds the file size/);
    // A sparse 200 MB file claiming a 150 MB header: over the limit, refused before reading it.
    const big = await rawFile({}, 0, 150_000_000n);
    await truncate(big, 200_000_000);
    await expectUserError(openSafetensors(big), /over the 104857600-byte limit/);
  });

  it('rejects headers that are not UTF-8 JSON objects', async () => {
    const bad = join(dir, 'utf8.safetensors');
    const buf = new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0xff, 0xfe, 0x7d]);
    await writeFile(bad, buf);
    await expectUserError(openSafetensors(bad), /not valid UTF-8/);
    await expectUserError(openSafetensors(await rawFile('{"a": ')), /not valid JSON/);
    await expectUserError(openSafetensors(await rawFile('')), /not valid JSON/);
    await expectUserError(openSafetensors(await rawFile('[1,2]')), /not a JSON object/);
    await expectUserError(openSafetensors(await rawFile('null')), /not a JSON object/);
    await expectUserError(openSafetensors(await rawFile({ __metadata__: { a: 1 } })), /"__metadata__" entry "a" must be a string/);
  });

  it('rejects malformed entries, naming the tensor', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ w: 5 }, /"w": entry is not an object/],
      [{ w: { shape: [1], data_offsets: [0, 4] } }, /"w": missing "dtype"/],
      [{ w: { dtype: 'F32', data_offsets: [0, 4] } }, /missing "shape"/],
      [{ w: { dtype: 'F32', shape: [1] } }, /missing "data_offsets"/],
      [{ w: t(7 as unknown as string, [1], [0, 4]) }, /"dtype" must be a string/],
      [{ w: t('F8_E4M3', [1], [0, 1]) }, /unsupported dtype "F8_E4M3"/],
      [{ w: t('F32', 'x', [0, 4]) }, /"shape" must be an array/],
      [{ w: t('F32', [-1], [0, 4]) }, /non-negative integers/],
      [{ w: t('F32', [1.5], [0, 4]) }, /non-negative integers/],
      [{ w: t('F32', [1], [0, 4, 8]) }, /two non-negative integers/],
      [{ w: t('F32', [1], ['0', 4]) }, /two non-negative integers/],
      [{ w: t('F32', [1], [-4, 0]) }, /two non-negative integers/],
      [{ w: t('F32', [1], [8, 4]) }, /end before they begin/],
      [{ w: t('F32', [4], [0, 16]) }, /run past the data section \(8 bytes/],
      [{ w: t('F32', [3], [0, 8]) }, /\[3\] of F32 needs 12 bytes but data_offsets hold 8/],
      [{ w: t('BF16', [1e10, 1e10], [0, 8]) }, /needs \d+ bytes but data_offsets hold 8/],
      [{ a: t('F32', [1], [0, 4]), b: t('U8', [2], [2, 4]) }, /"a" and "b" overlap/],
    ];
    for (const [header, pattern] of cases) {
      await expectUserError(openSafetensors(await rawFile(header, 8)), pattern);
    }
  });
});

describe('reading tensors', () => {
  it('reads raw bytes and float32 only for float dtypes', async () => {
    const data = new Uint8Array(12);
    new Float32Array(data.buffer, 0, 2).set([1.5, -2]);
    data.set([1, 2, 3, 4], 8);
    const f = await openSafetensors(await rawFile({ x: t('F32', [2], [0, 8]), q: t('U8', [4], [8, 12]) }, data));
    expect(Array.from(await readTensorF32(f, 'x'))).toEqual([1.5, -2]);
    expect(Array.from(await readTensorRaw(f, 'q'))).toEqual([1, 2, 3, 4]);
    await expectUserError(readTensorF32(f, 'q'), /tensor "q" has dtype U8, not a floating-point type/);
    await expectUserError(readTensorF32(f, 'nope'), /no tensor named "nope"/);
  });

  it('reports a file truncated after opening', async () => {
    const path = await rawFile({ x: t('F32', [4], [0, 16]) }, 16);
    const f = await openSafetensors(path);
    const fh = await open(path, 'r+');
    await fh.truncate(f.dataStart + 6);
    await fh.close();
    await expectUserError(readTensorF32(f, 'x'), /file is truncated: tensor "x"/);
    await rm(path);
    await expectUserError(readTensorRaw(f, 'x'), /not found/);
  });
});
