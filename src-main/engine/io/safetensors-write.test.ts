import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { DTYPE_BYTES } from './dtypes';
import { openSafetensors, readTensorF32, readTensorRaw } from './safetensors-read';
import { f32ToBf16, f32ToF16, f32ToLeBytes, writeShardedSafetensors, writeSafetensors, type TensorEntry } from './safetensors-write';
import { makeTempDir } from '../../test-support/tiny-model';
import { openModelWeights } from './model-weights';
import { refBf16, refHalf } from '../../test-support/float-reference';

function leU16(b: Uint8Array, i: number): number {
  return b[2 * i] | (b[2 * i + 1] << 8);
}

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeSafetensors', () => {
  it('round-trips F32, F16, BF16 and integer tensors, eager and lazy', async () => {
    const seed = Date.now();
    const rng = new Rng(seed);
    const x = rng.fillNormal(new Float32Array(7 * 5), 3) as Float32Array;
    x[0] = 1e-6; // an f16 subnormal
    x[1] = 1e5; // f16 overflow → inf
    const f16 = f32ToF16(x);
    const bf16 = f32ToBf16(x);
    const i8 = new Uint8Array([1, 255, 3]);
    let produced = 0;
    const entries: TensorEntry[] = [
      { name: 'small.i8', dtype: 'I8', shape: [3], data: i8 },
      { name: 'h', dtype: 'F16', shape: [7, 5], data: f16 },
      { name: 'f', dtype: 'F32', shape: [7, 5], data: async () => (produced++, f32ToLeBytes(x)) },
      { name: 'b', dtype: 'BF16', shape: [5, 7], data: bf16 },
      { name: 'scalar', dtype: 'F32', shape: [], data: f32ToLeBytes(new Float32Array([2.5])) },
    ];
    const path = join(dir, 'rt.safetensors');
    await writeSafetensors(path, entries, { note: 'hi' });
    expect(produced).toBe(1);

    const file = await openSafetensors(path);
    expect(file.metadata).toEqual({ format: 'pt', note: 'hi' });
    expect(file.dataStart % 8).toBe(0);
    for (const info of file.tensors.values()) expect(info.begin % DTYPE_BYTES[info.dtype]).toBe(0);

    const f = await readTensorF32(file, 'f');
    const h = await readTensorF32(file, 'h');
    const b = await readTensorF32(file, 'b');
    for (let i = 0; i < x.length; i++) {
      expect(f[i]).toBe(x[i]);
      expect(h[i], `seed ${seed}`).toBe(Math.fround(refHalf(leU16(f16, i))));
      expect(b[i], `seed ${seed}`).toBe(refBf16(leU16(bf16, i)));
      // Rounding error bounds: half an ulp (f16: 2^-11 relative, bf16: 2^-8) for normal values.
      if (Math.abs(x[i]) > 1e-4 && Math.abs(x[i]) < 6e4) {
        expect(Math.abs(h[i] - x[i])).toBeLessThanOrEqual(Math.abs(x[i]) * 2 ** -11);
      }
      expect(Math.abs(b[i] - x[i])).toBeLessThanOrEqual(Math.abs(x[i]) * 2 ** -8);
    }
    expect(h[1]).toBe(Infinity);
    expect(Array.from(await readTensorRaw(file, 'small.i8'))).toEqual([1, 255, 3]);
    expect(Array.from(await readTensorF32(file, 'scalar'))).toEqual([2.5]);
    expect(file.tensors.get('b')?.shape).toEqual([5, 7]);

    // The header is space-padded JSON ending the 8-aligned header block.
    const raw = await readFile(path);
    const len = Number(raw.readBigUInt64LE(0));
    expect(len % 8).toBe(0);
    expect(raw.subarray(8, 8 + len).toString('utf8')).toMatch(/^\{"__metadata__":.*\} *$/);
  });

  it('leaves no file behind when a producer fails or gives the wrong size', async () => {
    const path = join(dir, 'fail.safetensors');
    const boom = writeSafetensors(path, [
      { name: 'a', dtype: 'U8', shape: [2], data: new Uint8Array(2) },
      { name: 'b', dtype: 'U8', shape: [2], data: () => Promise.reject(new Error('boom')) },
    ]);
    await expect(boom).rejects.toThrow('boom');
    const short = writeSafetensors(path, [{ name: 'a', dtype: 'F32', shape: [2], data: async () => new Uint8Array(4) }]);
    await expect(short).rejects.toThrow(/4 bytes given, shape and dtype need 8/);
    expect((await readdir(dir)).filter((n) => n.startsWith('fail'))).toEqual([]);
  });

  it('refuses invalid entries before writing anything', async () => {
    const path = join(dir, 'invalid.safetensors');
    await expect(writeSafetensors(path, [
      { name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array(1) },
      { name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array(1) },
    ])).rejects.toThrow(/duplicate/);
    await expect(writeSafetensors(path, [{ name: 'a', dtype: 'U8', shape: [2], data: new Uint8Array(1) }])).rejects.toThrow(
      /1 bytes given/,
    );
    expect((await readdir(dir)).filter((n) => n.startsWith('invalid'))).toEqual([]);
  });

  it('reports an unwritable destination as a UserError naming the file', async () => {
    const path = join(dir, 'no-such-folder', 'x.safetensors');
    await expect(writeSafetensors(path, [])).rejects.toThrow(/cannot write .*x\.safetensors: its folder does not exist/);
  });
});

describe('writeShardedSafetensors', () => {
  function entries(count: number, rng: Rng): { list: TensorEntry[]; values: Map<string, Float32Array> } {
    const values = new Map<string, Float32Array>();
    const list: TensorEntry[] = [];
    for (let i = 0; i < count; i++) {
      const v = rng.fillNormal(new Float32Array(10 * (i + 1))) as Float32Array;
      values.set(`t${i}`, v);
      list.push({ name: `t${i}`, dtype: 'F32', shape: [i + 1, 10], data: async () => f32ToLeBytes(v) });
    }
    return { list, values };
  }

  it('writes shards and an index that openModelWeights reads back, then a single file again', async () => {
    const out = join(dir, 'sharded');
    const { list, values } = entries(6, new Rng(Date.now()));
    // Sizes 40..240 bytes; a 300-byte limit gives shards {t0,t1,t2}, {t3}, {t4}, {t5}.
    const res = await writeShardedSafetensors(out, 'model', list, { who: 'test' }, 300);
    expect(res.files.map((f) => f.slice(out.length + 1))).toEqual([
      'model-00001-of-00004.safetensors',
      'model-00002-of-00004.safetensors',
      'model-00003-of-00004.safetensors',
      'model-00004-of-00004.safetensors',
    ]);
    const index = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(index.metadata.total_size).toBe(40 * (1 + 2 + 3 + 4 + 5 + 6));
    expect(index.weight_map.t2).toBe('model-00001-of-00004.safetensors');
    expect(index.weight_map.t5).toBe('model-00004-of-00004.safetensors');

    const w = await openModelWeights(out);
    expect(w.names().sort()).toEqual([...values.keys()].sort());
    expect(w.files.length).toBe(4);
    for (const [name, v] of values) expect(Array.from(await w.readF32(name))).toEqual(Array.from(v));
    expect(w.info('t3')).toMatchObject({ dtype: 'F32', shape: [4, 10] });

    // Rewriting as one file removes the index and the shards (loaders would be confused).
    await writeShardedSafetensors(out, 'model', list.slice(0, 2), {}, 1e9);
    expect((await readdir(out)).sort()).toEqual(['model.safetensors']);
    expect((await openModelWeights(out)).names()).toEqual(['t0', 't1']);
  });
});
