// Every operation of the device layer, on every device (CPU always, CUDA where it runs),
// against a float64 reference written here and, for the quantizer, against the host
// (CPU) kernel bit for bit. Fresh random inputs each run (LOWRANK_SEED replays one).
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeOnDevices } from '../../test-support/devices';
import { refBf16, refHalf } from '../../test-support/float-reference';
import { encodeF32, f32ToBf16, f32ToF16, f32ToF64Bytes, type FloatDtype } from '../io/dtypes';
import { testSeed } from '../lowrank/testing';
import { BlockQuantizer, codebookFor } from '../quant/blockwise';
import { codebookLevels, type QuantKind } from '../quant/codebook';
import { packCodes } from './packing';
import { fillNormal } from '../util/counter-normal';
import { Rng } from '../util/random';
import type { ComputeDevice, DeviceMatrix } from './device';
import { matrix, type Matrix } from './matrix';

const seed = testSeed();
const why = `seed ${seed} (replay with LOWRANK_SEED=${seed})`;

function randomMatrix(rng: Rng, rows: number, cols: number, scale = 1): Matrix {
  return matrix(rows, cols, rng.fillNormal(new Float32Array(rows * cols), scale) as Float32Array);
}

/** op(A)·op(B) in float64 from the float32 inputs. */
function refMatmul(a: Matrix, b: Matrix, transA: boolean, transB: boolean): Float64Array {
  const [m, k] = transA ? [a.cols, a.rows] : [a.rows, a.cols];
  const n = transB ? b.rows : b.cols;
  const at = (i: number, p: number) => (transA ? a.data[p * a.cols + i] : a.data[i * a.cols + p]);
  const bt = (p: number, j: number) => (transB ? b.data[j * b.cols + p] : b.data[p * b.cols + j]);
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) {
    const x = at(i, p);
    for (let j = 0; j < n; j++) c[i * n + j] += x * bt(p, j);
  }
  return c;
}

function relativeError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (got[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num / (den || 1));
}

function mismatches(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = Math.abs(a.length - b.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'loftq-device-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describeOnDevices('device layer', (device, kind) => {
  const dev = (): ComputeDevice => device();
  const up = (m: Matrix) => dev().upload(m);
  const down = async (m: DeviceMatrix) => (await dev().download(m)).data;

  it('upload / download round-trips and zeros', async () => {
    const rng = new Rng(seed);
    const m = randomMatrix(rng, 37, 53);
    const d = await up(m);
    expect(mismatches(await down(d), m.data)).toBe(0);
    const z = await dev().zeros(19, 7);
    expect(Array.from(await down(z)).every((v) => v === 0)).toBe(true);
    d.dispose();
    z.dispose();
  });

  it('converts stored F16, BF16 and F64 exactly as the IEEE definitions (F64 rounded to nearest)', async () => {
    const rng = new Rng(seed);
    const rows = 33;
    const cols = 65;
    const x = randomMatrix(rng, rows, cols, 3).data;
    x[0] = 0;
    x[1] = -0;
    x[2] = 65504;
    x[3] = 1e-7;
    for (const dtype of ['F16', 'BF16', 'F64', 'F32'] as FloatDtype[]) {
      const bytes = dtype === 'F16' ? f32ToF16(x) : dtype === 'BF16' ? f32ToBf16(x) : dtype === 'F64' ? f32ToF64Bytes(x) : encodeF32(x, 'F32');
      const got = await down(await dev().uploadEncoded(bytes, dtype, rows, cols));
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < x.length; i++) {
        const ref =
          dtype === 'F16' ? refHalf(view.getUint16(2 * i, true)) : dtype === 'BF16' ? refBf16(view.getUint16(2 * i, true)) : dtype === 'F64' ? Math.fround(view.getFloat64(8 * i, true)) : x[i];
        expect(Object.is(got[i], ref), `${dtype} [${i}]`).toBe(true);
      }
    }
  });

  it('reads a tensor from a file at an offset, across the transfer chunks (36 MB) and in bf16', async () => {
    const rng = new Rng(seed);
    const count = 9_000_000;
    const x = rng.fillNormal(new Float32Array(count)) as Float32Array;
    const path = join(tmp, `weights-${kind}.bin`);
    const fh = await open(path, 'w+');
    try {
      const f32 = encodeF32(x, 'F32');
      const bf16 = f32ToBf16(x.subarray(0, 1_000_003));
      await fh.write(new Uint8Array(13), 0, 13, 0);
      await fh.write(f32, 0, f32.length, 13);
      await fh.write(bf16, 0, bf16.length, 13 + f32.length);
      const a = await dev().readFile(fh.fd, 13, 'F32', 3000, 3000);
      expect(mismatches(await down(a), x)).toBe(0);
      a.dispose();
      const b = await dev().readFile(fh.fd, 13 + f32.length, 'BF16', 1, 1_000_003);
      const got = await down(b);
      const view = new DataView(bf16.buffer, bf16.byteOffset, bf16.byteLength);
      let bad = 0;
      for (let i = 0; i < got.length; i++) if (got[i] !== refBf16(view.getUint16(2 * i, true))) bad++;
      expect(bad).toBe(0);
      b.dispose();
      // Past the end of the file: a truncated tensor is an error, not garbage.
      await expect(dev().readFile(fh.fd, 13 + f32.length, 'F32', 1000, 1000)).rejects.toThrow(/truncated/);
    } finally {
      await fh.close();
    }
  });

  it('randomNormal: seeded, standard normal moments, different per seed', async () => {
    const n = 200_000;
    const a = await down(await dev().randomNormal(n, 1, 7));
    const b = await down(await dev().randomNormal(n, 1, 7));
    const c = await down(await dev().randomNormal(n, 1, 8));
    expect(mismatches(a, b)).toBe(0);
    expect(mismatches(a, c)).toBeGreaterThan(n * 0.99);
    let mean = 0;
    let sq = 0;
    let q4 = 0;
    for (const v of a) {
      mean += v;
      sq += v * v;
      q4 += v ** 4;
    }
    mean /= n;
    const variance = sq / n - mean * mean;
    // Standard errors at n = 2e5: mean 0.0022, variance 0.0032, fourth moment 0.022; bounds are 5σ.
    expect(Math.abs(mean)).toBeLessThan(0.012);
    expect(Math.abs(variance - 1)).toBeLessThan(0.016);
    expect(Math.abs(q4 / n - 3)).toBeLessThan(0.11);
    expect(a.every((v) => Number.isFinite(v))).toBe(true);
    // Every backend draws the stream of util/counter-normal (float64 log/cos may differ in the
    // last bit between libraries, which float32 rounding almost always absorbs: ≤ 1 ulp).
    const host = fillNormal(new Float32Array(n), 7);
    let off = 0;
    for (let i = 0; i < n; i++) if (Math.abs(a[i] - host[i]) > Math.abs(host[i]) * 2 ** -23 + 1e-30) off++;
    expect(off).toBe(0);
    expect(mismatches(a, host)).toBeLessThan(n * 1e-3);
  });

  it('copyColumns, scaleColumns, transpose (exact)', async () => {
    const rng = new Rng(seed);
    const src = randomMatrix(rng, 67, 9);
    const dst = randomMatrix(rng, 67, 12);
    const d = await up(dst);
    const s = await up(src);
    await dev().copyColumns(d, 3, s, 2, 5);
    const got = await down(d);
    for (let i = 0; i < 67; i++) for (let j = 0; j < 12; j++) {
      const want = j >= 3 && j < 8 ? src.data[i * 9 + j - 1] : dst.data[i * 12 + j];
      expect(got[i * 12 + j]).toBe(want);
    }
    await expect(dev().copyColumns(d, 10, s, 0, 5)).rejects.toThrow(/out of range/);
    // Factors representable in float32, so the float32 product is the same on every backend.
    const factors = Array.from({ length: 9 }, () => Math.fround(rng.normal()));
    const scaled = await down(await dev().scaleColumns(s, factors));
    for (let i = 0; i < src.data.length; i++) expect(scaled[i]).toBe(Math.fround(src.data[i] * factors[i % 9]));
    const big = randomMatrix(rng, 130, 77);
    const t = await dev().transpose(await up(big));
    expect([t.rows, t.cols]).toEqual([77, 130]);
    const tt = await down(t);
    for (let i = 0; i < 130; i++) for (let j = 0; j < 77; j++) expect(tt[j * 130 + i]).toBe(big.data[i * 77 + j]);
  });

  it('matmul in every transpose combination: fp32 within 1e-5 and tf32 within 3e-3 of float64', async () => {
    const rng = new Rng(seed);
    const [m, k, n] = [150, 301, 77];
    for (const transA of [false, true]) for (const transB of [false, true]) {
      const a = transA ? randomMatrix(rng, k, m) : randomMatrix(rng, m, k);
      const b = transB ? randomMatrix(rng, n, k) : randomMatrix(rng, k, n);
      const ref = refMatmul(a, b, transA, transB);
      const [da, db] = [await up(a), await up(b)];
      for (const precision of ['fp32', 'tf32'] as const) {
        const c = await dev().matmul(da, db, { transA, transB, precision });
        expect([c.rows, c.cols]).toEqual([m, n]);
        // float32 accumulation over k = 301 terms: ~√k·u₃₂ ≈ 1e-6; tf32 rounds inputs to 2⁻¹¹.
        const tol = precision === 'fp32' || kind === 'cpu' ? 1e-5 : 3e-3;
        expect(relativeError(await down(c), ref), `${transA} ${transB} ${precision}, ${why}`).toBeLessThan(tol);
        c.dispose();
      }
    }
    await expect(dev().matmul(await up(randomMatrix(rng, 3, 4)), await up(randomMatrix(rng, 5, 2)))).rejects.toThrow(/shape mismatch/);
  });

  it('gram in float64 (1e-12 of the float64 reference), residual D − B·A (1e-6), sumSquares (1e-12)', async () => {
    const rng = new Rng(seed);
    const a = randomMatrix(rng, 4099, 24);
    const g = await dev().gram(await up(a));
    const ref = refMatmul(a, a, true, false);
    expect(relativeError(g, ref), why).toBeLessThan(1e-12);
    const d = randomMatrix(rng, 70, 90);
    const b = randomMatrix(rng, 70, 6);
    const aa = randomMatrix(rng, 6, 90);
    const ba = refMatmul(b, aa, false, false);
    const want = Float64Array.from(d.data, (v, i) => v - ba[i]);
    const e = await dev().lowRankResidual(await up(d), await up(b), await up(aa));
    expect(relativeError(await down(e), want), why).toBeLessThan(1e-6);
    const big = randomMatrix(rng, 1000, 1037);
    let ss = 0;
    for (const v of big.data) ss += v * v;
    expect(Math.abs((await dev().sumSquares(await up(big))) - ss) / ss, why).toBeLessThan(1e-12);
  });

  it('orthonormalize: orthonormal columns spanning Y, for well-conditioned, rank-deficient and zero inputs', async () => {
    const rng = new Rng(seed);
    const rows = 700;
    const k = 40;
    const check = async (y: Matrix, passes: 1 | 2, rank: number) => {
      const q = await down(await dev().orthonormalize(await up(y), passes));
      // QᵀQ = I on the first `rank` columns (float32 products: ~√k·u₃₂; one pass ~u₃₂·κ).
      const g = refMatmul(matrix(rows, k, q), matrix(rows, k, q), true, false);
      let worst = 0;
      for (let a = 0; a < rank; a++) for (let b = 0; b < rank; b++) worst = Math.max(worst, Math.abs(g[a * k + b] - (a === b ? 1 : 0)));
      // Y lies in span(Q): ‖Y − Q·QᵀY‖ ≪ ‖Y‖.
      const qty = refMatmul(matrix(rows, k, q), y, true, false);
      const proj = refMatmul(matrix(rows, k, q), matrix(k, k, Float32Array.from(qty)), false, false);
      return { worst, residual: relativeError(proj, y.data) };
    };
    const y = randomMatrix(rng, rows, k);
    for (let j = 1; j < k; j++) for (let i = 0; i < rows; i++) y.data[i * k + j] += 0.9 * y.data[i * k + j - 1]; // κ ≈ 1e2
    const two = await check(y, 2, k);
    expect(two.worst, why).toBeLessThan(1e-5);
    expect(two.residual, why).toBeLessThan(1e-5);
    const one = await check(y, 1, k);
    expect(one.worst, why).toBeLessThan(1e-3);
    // Rank 10 of 40 columns: the Gram is singular, so a shifted pass comes first; the span holds.
    const basis = randomMatrix(rng, rows, 10);
    const mix = randomMatrix(rng, 10, k);
    const low = matrix(rows, k, Float32Array.from(refMatmul(basis, mix, false, false)));
    const def = await check(low, 2, 1);
    expect(def.residual, why).toBeLessThan(1e-4);
    const zero = await down(await dev().orthonormalize(await dev().zeros(rows, k), 2));
    expect(zero.every((v) => v === 0)).toBe(true);
    const bad = randomMatrix(rng, rows, k);
    bad.data[17] = NaN;
    await expect(dev().orthonormalize(await up(bad), 2)).rejects.toThrow(/NaN/);
  });

  it('findNonFinite names the first NaN or infinity, or -1', async () => {
    const rng = new Rng(seed);
    const m = randomMatrix(rng, 300, 301);
    expect(await dev().findNonFinite(await up(m))).toBe(-1);
    const at = 1 + (rng.nextUint32() % (m.data.length - 2));
    m.data[at] = Infinity;
    m.data[m.data.length - 1] = NaN;
    expect(await dev().findNonFinite(await up(m))).toBe(at);
  });

  const codebooks: Array<[QuantKind, number]> = [
    ['nf', 2],
    ['nf', 3],
    ['nf', 4],
    ['uniform', 2],
    ['uniform', 3],
    ['uniform', 4],
    ['uniform', 8],
    ['ggml', 4],
    ['ggml', 8],
  ];
  for (const [quant, bits] of codebooks) {
    it(`quantize ${quant}${bits}: the host kernel's codes, absmax and W − Q bit for bit; sums within 1e-12`, async () => {
      const rng = new Rng(seed + bits);
      // llama.cpp's q4_0/q8_0 have one block size.
      const shapes =
        quant === 'ggml'
          ? [
              [64, 128, 32],
              [33, 96, 32],
              [301, 256, 32],
            ]
          : [
              [64, 130, 64],
              [33, 97, 100],
              [17, 19, 1],
              [301, 257, 4097],
            ];
      for (const [rows, cols, blockSize] of shapes) {
        const n = rows * cols;
        const codebook = codebookFor({ kind: quant, bits, blockSize });
        const host = new BlockQuantizer(codebook);
        const w = randomMatrix(rng, rows, cols);
        // Plant exact midpoints and ties, where a sloppy search would differ.
        const levels = codebookLevels(quant, bits);
        for (let i = 0; i < Math.min(8, n); i++) w.data[(i * 7919) % n] = ((levels[i % (levels.length - 1)] + levels[(i % (levels.length - 1)) + 1]) / 2) * 0.999;
        const x = matrix(rows, cols, w.data.map((v) => v + 0.1 * rng.normal()));
        if (quant === 'ggml') {
          // A block whose values land on q4_0's halfway points (d = −1/8 exactly), one of all
          // zeros (d = −0), and a value of largest magnitude that appears twice with both signs.
          for (let j = 0; j < 32; j++) x.data[j] = j === 0 ? 1 : ((j % 17) - 8 + 0.5 * (j % 2)) * 0.125;
          x.data.fill(0, 32, 64);
          x.data[70] = -9;
          x.data[90] = 9;
        }
        const prevHost = host.quantize(w.data);
        const refDiff = new Float32Array(n);
        const prevOut = new Float64Array(1);
        const refQ = { codes: new Uint8Array(n), absmax: new Float32Array(host.blockCount(n)) };
        const refErr = host.quantizeInto(x.data, refQ, w.data, refDiff, { q: prevHost, out: prevOut });

        const [dx, dw] = [await up(x), await up(w)];
        const prev = await dev().uploadQuantized(packCodes(prevHost.codes, bits), bits, n, prevHost.absmax, codebook);
        const out = await dev().allocQuantized(n, codebook);
        const diff = await dev().zeros(rows, cols);
        const sums = await dev().quantize(dx, dw, out, codebook, { diff, previous: prev });
        const packed = await dev().packCodes(out.codes, bits);
        expect(mismatches(packed, packCodes(refQ.codes, bits)), `${rows}x${cols} block ${blockSize}`).toBe(0);
        expect(mismatches(await down(out.absmax), refQ.absmax)).toBe(0);
        expect(mismatches(await down(diff), refDiff)).toBe(0);
        expect(Math.abs(sums.errSq - refErr) / refErr, why).toBeLessThan(1e-12);
        // previous error against a float64 reference: ‖x − dequant(prev)‖².
        const deq = host.dequantize(prevHost);
        let prevRef = 0;
        for (let i = 0; i < n; i++) prevRef += (x.data[i] - deq[i]) ** 2;
        expect(Math.abs(sums.previousErrSq - prevRef) / prevRef, why).toBeLessThan(1e-12);
        expect(Math.abs(prevOut[0] - prevRef) / prevRef, why).toBeLessThan(1e-12);
        // The same error from the separate kernel, and the dequantized matrix bit for bit.
        expect(Math.abs((await dev().quantizationErrorSq(dx, prev, codebook)) - prevRef) / prevRef).toBeLessThan(1e-12);
        expect(mismatches(await down(await dev().dequantize(prev, codebook, rows, cols)), deq)).toBe(0);
        // Without extras: no diff is written and previousErrSq is NaN.
        const again = await dev().quantize(dx, dw, out, codebook);
        expect(Math.abs(again.errSq - refErr) / refErr).toBeLessThan(1e-12);
        expect(again.previousErrSq).toBeNaN();
        const copy = await dev().allocQuantized(n, codebook);
        await dev().copyQuantized(copy, out);
        expect(mismatches(await dev().packCodes(copy.codes, bits), packed)).toBe(0);
        for (const t of [dx, dw, prev, out, diff, copy]) t.dispose();
      }
    });
  }

  it('packs and unpacks every bit width like tensor/packing', async () => {
    const rng = new Rng(seed);
    for (const bits of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const n = 1000 + (rng.nextUint32() % 37);
      const codes = Uint8Array.from({ length: n }, () => rng.nextUint32() & ((1 << bits) - 1));
      const blockSize = 64;
      const levelCount = Math.max(2, 1 << bits);
      const levels = Float32Array.from({ length: levelCount }, (_, i) => -1 + (2 * i) / (levelCount - 1));
      const codebook = { levels, blockSize };
      const absmax = new Float32Array(Math.ceil(n / blockSize)).fill(1);
      const q = await dev().uploadQuantized(packCodes(codes, bits), bits, n, absmax, codebook);
      expect(mismatches(await dev().packCodes(q.codes, bits), packCodes(codes, bits)), `bits ${bits}`).toBe(0);
      q.dispose();
    }
  });

  it.runIf(kind === 'cuda')('tracks GPU memory, and refuses a freed matrix', async () => {
    const before = dev().memoryUsage()!;
    const m = await dev().zeros(1024, 1024);
    const during = dev().memoryUsage()!;
    expect(during.inUse - before.inUse).toBe(4 * 1024 * 1024);
    expect(during.peak).toBeGreaterThanOrEqual(during.inUse);
    m.dispose();
    expect(dev().memoryUsage()!.inUse).toBe(before.inUse);
    await expect(dev().sumSquares(m)).rejects.toThrow(/after dispose/);
  });
});
