// Fuzz: thousands of corruptions of a valid file must each either read fine or fail with a
// UserError, never another exception (a bug) and never a hang.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../errors';
import { Rng } from '../util/random';
import { isFloatDtype } from './dtypes';
import { openSafetensors, readTensorF32, readTensorRaw } from './safetensors-read';
import { f32ToBf16, f32ToF16, f32ToLeBytes, writeSafetensors } from './safetensors-write';
import { makeTempDir } from '../../test-support/tiny-model';

const ITERATIONS = 3000;

let dir: string;
let valid: Uint8Array;
beforeAll(async () => {
  dir = await makeTempDir('loftq-fuzz-');
  const x = new Float32Array([1, -2, 0.5, 3, 1e-7, -0, 65504, 7, 8, 9, 10, 11]);
  await writeSafetensors(
    join(dir, 'valid.safetensors'),
    [
      { name: 'w.f32', dtype: 'F32', shape: [3, 4], data: f32ToLeBytes(x) },
      { name: 'w.f16', dtype: 'F16', shape: [12], data: f32ToF16(x) },
      { name: 'w.bf16', dtype: 'BF16', shape: [2, 6], data: f32ToBf16(x) },
      { name: 'w.f64', dtype: 'F64', shape: [2], data: new Uint8Array(new Float64Array([1, 2]).buffer) },
      { name: 'codes', dtype: 'U8', shape: [5], data: new Uint8Array([1, 2, 3, 4, 5]) },
      { name: 'empty', dtype: 'I8', shape: [0, 3], data: new Uint8Array(0) },
    ],
    { format: 'pt', note: 'fuzz' },
  );
  valid = new Uint8Array(await readFile(join(dir, 'valid.safetensors')));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function randomJson(rng: Rng, depth = 0): unknown {
  const pick = Math.floor(rng.uniform() * (depth > 2 ? 7 : 9));
  const nums = [0, -1, 1, 1.5, 2 ** 53, 2 ** 64, 1e308, -0, 4, 8, 12, 24, 48, 96];
  switch (pick) {
    case 0:
      return null;
    case 1:
      return rng.uniform() < 0.5;
    case 2:
      return nums[Math.floor(rng.uniform() * nums.length)];
    case 3:
      return Math.floor(rng.uniform() * 200) - 20;
    case 4:
      return ['F32', 'F16', 'BF16', 'I8', 'U8', 'F8_E5M2', '', '__proto__', 'x'][Math.floor(rng.uniform() * 9)];
    case 5:
      return [Math.floor(rng.uniform() * 50), Math.floor(rng.uniform() * 200)];
    case 6:
      return 'é\u0000\ud800';
    case 7:
      return Array.from({ length: Math.floor(rng.uniform() * 4) }, () => randomJson(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = ['dtype', 'shape', 'data_offsets', '__metadata__', 'w.f32', 'k', 'a\nb'];
      for (let i = 0; i < 3; i++) o[keys[Math.floor(rng.uniform() * keys.length)]] = randomJson(rng, depth + 1);
      return o;
    }
  }
}

function headerOf(buf: Uint8Array): { len: number; json: Record<string, Record<string, unknown>> } {
  const len = Number(new DataView(buf.buffer, buf.byteOffset).getBigUint64(0, true));
  return { len, json: JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + len))) };
}

function withHeader(buf: Uint8Array, text: string): Uint8Array {
  const { len } = headerOf(buf);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + buf.length - 8 - len);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(buf.subarray(8 + len), 8 + h.length);
  return out;
}

type Mutation = (buf: Uint8Array, rng: Rng) => Uint8Array;
const int = (rng: Rng, n: number): number => Math.floor(rng.uniform() * n);

const mutations: Record<string, Mutation> = {
  flipHeaderBytes(buf, rng) {
    const out = buf.slice();
    const len = headerOf(valid).len;
    for (let k = 1 + int(rng, 4); k > 0; k--) out[8 + int(rng, len)] = int(rng, 256);
    return out;
  },
  flipAnyBytes(buf, rng) {
    const out = buf.slice();
    for (let k = 1 + int(rng, 4); k > 0; k--) out[int(rng, out.length)] ^= 1 << int(rng, 8);
    return out;
  },
  truncate(buf, rng) {
    return buf.slice(0, int(rng, buf.length));
  },
  lengthPrefix(buf, rng) {
    if (buf.length < 8) return buf;
    const out = buf.slice();
    const dv = new DataView(out.buffer);
    const len = dv.getBigUint64(0, true);
    const choices = [0n, len + 1n, len - 1n, len + 8n, len - 8n, BigInt(rng.nextUint32()), 2n ** 64n - 1n, 2n ** 63n, 104857601n];
    const v = choices[int(rng, choices.length)];
    dv.setBigUint64(0, v < 0n ? 0n : v, true);
    return out;
  },
  spliceJson(buf, rng) {
    const { json } = headerOf(buf);
    const names = Object.keys(json);
    const r = rng.uniform();
    if (r < 0.6) {
      const e = json[names[int(rng, names.length)]];
      const field = ['dtype', 'shape', 'data_offsets', 'extra'][int(rng, 4)];
      if (rng.uniform() < 0.2) delete e[field];
      else e[field] = randomJson(rng);
    } else if (r < 0.8) {
      json[`new${int(rng, 3)}`] = randomJson(rng) as Record<string, unknown>;
    } else if (r < 0.9) {
      json[names[int(rng, names.length)]] = randomJson(rng) as Record<string, unknown>;
    } else {
      return withHeader(buf, JSON.stringify(randomJson(rng)));
    }
    return withHeader(buf, JSON.stringify(json));
  },
  spliceText(buf, rng) {
    const { len } = headerOf(buf);
    const text = new TextDecoder().decode(buf.subarray(8, 8 + len));
    const at = int(rng, text.length);
    const junk = ['{', '}', '"', ',', ':', '[', ']', '\\', '\u00ff', '-', '9e999', ' ', '', '\n'][int(rng, 14)];
    const cut = int(rng, 3);
    return withHeader(buf, text.slice(0, at) + junk + text.slice(at + cut));
  },
};
const mutationNames = Object.keys(mutations);

async function openAndReadAll(path: string): Promise<void> {
  const f = await openSafetensors(path);
  for (const t of f.tensors.values()) {
    if (isFloatDtype(t.dtype)) await readTensorF32(f, t.name);
    else await readTensorRaw(f, t.name);
  }
}

describe('safetensors reader fuzz', () => {
  it('only ever succeeds or throws UserError', { timeout: 30_000 }, async () => {
    // Replay a failure with FUZZ_SEED=<seed printed in the failure>.
    const seed = Number(process.env.FUZZ_SEED) || Date.now();
    const rng = new Rng(seed);
    const path = join(dir, 'fuzzed.safetensors');
    await writeFile(path, valid);
    await openAndReadAll(path); // the unmutated file must read

    const outcomes = { ok: 0, userError: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      let buf = valid;
      const applied: string[] = [];
      for (let k = 1 + int(rng, 2); k > 0; k--) {
        const name = mutationNames[int(rng, mutationNames.length)];
        // JSON-level mutations need a parseable header to start from.
        if ((name === 'spliceJson' || name === 'spliceText') && buf !== valid) continue;
        buf = mutations[name](buf, rng);
        applied.push(name);
      }
      await writeFile(path, buf);
      try {
        await openAndReadAll(path);
        outcomes.ok++;
      } catch (e) {
        if (!(e instanceof UserError)) {
          const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
          throw new Error(`fuzz seed ${seed}, iteration ${i}, mutations ${applied.join('+')}: ${detail}`);
        }
        expect(e.message.length, `seed ${seed}`).toBeGreaterThan(0);
        expect(e.message.includes('\n'), `seed ${seed}: one-line message`).toBe(false);
        outcomes.userError++;
      }
    }
    // Both outcomes must occur, else the mutations are not exercising the reader.
    expect(outcomes.ok, `seed ${seed}`).toBeGreaterThan(50);
    expect(outcomes.userError, `seed ${seed}`).toBeGreaterThan(ITERATIONS / 2);
  });
});
