// The GGUF container: what the writer lays out, read back field by field and byte by byte
// (the bytes checked against the format's definition written out here, not the writer's code).
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../test-support/tiny-model';
import { UserError } from '../errors';
import { ggmlTensorBytes } from './format';
import { readGguf, readGgufTensor } from './read';
import { gguf, writeGguf, type GgufValue } from './write';

let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-gguf-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('GGUF writer and reader', () => {
  it('round-trips metadata of every kind and tensors at 32-byte aligned offsets', async () => {
    const path = join(tmp, 'a.gguf');
    const md = new Map<string, GgufValue>([
      ['general.architecture', gguf.str('llama')],
      ['llama.block_count', gguf.u32(3)],
      ['x.f32', gguf.f32(1e-5)],
      ['x.bool', gguf.bool(true)],
      ['x.i32', gguf.i32(-7)],
      ['x.u64', gguf.u64(2 ** 40)],
      ['x.strings', gguf.strings(['a', 'é', ''])],
      ['x.f32s', gguf.f32s([0.5, -2])],
      ['x.i32s', gguf.i32s([1, -1])],
    ]);
    const a = Uint8Array.from({ length: 7 * 4 }, (_, i) => i);
    const b = Uint8Array.from({ length: 2 * 34 }, (_, i) => 255 - i);
    await writeGguf(path, md, [
      { name: 'a', type: 'F32', ne: [7], data: a },
      { name: 'b', type: 'Q8_0', ne: [32, 2], data: async () => b },
    ]);
    const f = await readGguf(path);
    expect(f.version).toBe(3);
    expect(f.metadata.get('general.architecture')).toBe('llama');
    expect(f.metadata.get('llama.block_count')).toBe(3);
    expect(f.metadata.get('x.f32')).toBe(Math.fround(1e-5));
    expect(f.metadata.get('x.bool')).toBe(true);
    expect(f.metadata.get('x.i32')).toBe(-7);
    expect(f.metadata.get('x.u64')).toBe(BigInt(2 ** 40));
    expect(f.metadata.get('x.strings')).toEqual(['a', 'é', '']);
    expect(f.metadata.get('x.f32s')).toEqual([0.5, -2]);
    expect(f.metadata.get('x.i32s')).toEqual([1, -1]);
    expect(f.tensors.get('a')).toMatchObject({ type: 'F32', ne: [7], bytes: 28 });
    expect(f.tensors.get('b')).toMatchObject({ type: 'Q8_0', ne: [32, 2], bytes: 68 });
    for (const t of f.tensors.values()) expect(t.offset % 32).toBe(0);
    expect(await readGgufTensor(f, 'a')).toEqual(a);
    expect(await readGgufTensor(f, 'b')).toEqual(b);

    // The first bytes as the format defines them: magic, version, counts, then the first key.
    const raw = readFileSync(path);
    expect(raw.subarray(0, 4).toString('latin1')).toBe('GGUF');
    expect(raw.readUInt32LE(4)).toBe(3);
    expect(raw.readBigUInt64LE(8)).toBe(2n);
    expect(raw.readBigUInt64LE(16)).toBe(BigInt(md.size));
    expect(raw.readBigUInt64LE(24)).toBe(BigInt('general.architecture'.length));
    expect(raw.subarray(32, 52).toString()).toBe('general.architecture');
    expect(raw.readUInt32LE(52)).toBe(8); // string
    expect(raw.length % 32).toBe(0);
  });

  it('refuses a tensor whose bytes do not fit its type and shape, leaving no file', async () => {
    const path = join(tmp, 'bad.gguf');
    await expect(writeGguf(path, new Map(), [{ name: 'x', type: 'Q4_0', ne: [32, 1], data: new Uint8Array(17) }])).rejects.toThrow(/17 bytes given, Q4_0 \[32, 1\] needs 18/);
    expect(() => readFileSync(path)).toThrow();
    expect(() => ggmlTensorBytes('Q4_0', [33])).toThrow(/multiple of 32/);
  });

  it('reads damaged files as one-line UserErrors', async () => {
    const good = join(tmp, 'good.gguf');
    await writeGguf(good, new Map([['k', gguf.str('v')]]), [{ name: 't', type: 'F32', ne: [4], data: new Uint8Array(16) }]);
    const bytes = readFileSync(good);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['magic', Buffer.concat([Buffer.from('GGUX'), bytes.subarray(4)]), /not a GGUF file/],
      ['truncated', bytes.subarray(0, 40), /truncated/],
      ['short data', bytes.subarray(0, bytes.length - 32), /runs past the end/],
    ];
    for (const [name, data, pattern] of cases) {
      const p = join(tmp, `${name}.gguf`);
      writeFileSync(p, data);
      const e = await readGguf(p).catch((err: unknown) => err);
      expect(e, name).toBeInstanceOf(UserError);
      expect((e as Error).message, name).toMatch(pattern);
    }
  });
});
