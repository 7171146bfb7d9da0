// The CUDA backend of the device layer, over the native addon: matrices are device
// allocations, every operation is enqueued on one CUDA stream and returns at once; only the
// operations that hand a result to the host (sums, Grams, downloads) wait, and they wait off
// the JS thread, so file reads and the next matrix's upload overlap with GPU work.
import { UserError } from '../errors';

import { DTYPE_BYTES, type FloatDtype } from '../io/dtypes';
import { packedByteLength } from './packing';
import {
  QUANT_RULE_NUMBER,
  quantizedOf,
  type Codebook,
  type ComputeDevice,
  type DeviceCodes,
  type DeviceInfo,
  type DeviceMatrix,
  type DeviceQuantized,
  type MatmulOptions,
  type QuantizeExtras,
  type QuantizeSums,
} from './device';
import { cudaLibraryDirs, CudaUnavailable, loadAddon, NATIVE_DTYPES, oneLine, type CudaNative, type NativeBuffer } from './cuda-addon';
import { matrix, type Matrix } from './matrix';
import { MAX_PASSES } from './cholesky-qr';
import { CudaNeuralOps } from './cuda-nn';
import { CudaAllocation, liveAs } from './cuda-allocation';
import type { ComputePrecision, NeuralOptions, NeuralOps } from './nn';

/** Pass flags of the addon's CholeskyQR (native/src/cholesky.cu). */
/** Products of the low-rank solvers are float32 (addon dtype code). */
const F32 = NATIVE_DTYPES.F32;
const CHOLESKY_SHIFTED = 1;
const CHOLESKY_ZERO = 2;
const CHOLESKY_NON_FINITE = 4;

export class CudaMatrix extends CudaAllocation implements DeviceMatrix {
  constructor(
    native: CudaNative,
    buf: NativeBuffer,
    readonly rows: number,
    readonly cols: number,
  ) {
    super(native, buf);
  }
}

class CudaCodes extends CudaAllocation implements DeviceCodes {
  constructor(
    native: CudaNative,
    buf: NativeBuffer,
    readonly length: number,
  ) {
    super(native, buf);
  }
}

const live = <T extends CudaAllocation>(t: unknown, kind: new (...args: never[]) => T, what: string): T => liveAs(t, kind, what, 'CUDA device');

const mat = (m: DeviceMatrix) => live(m, CudaMatrix, 'a matrix');
const codes = (c: DeviceCodes) => live(c, CudaCodes, 'codes');

/** Device failures the user can act on (memory) become one-line user errors. */
function translate(e: unknown): unknown {
  const message = e instanceof Error ? e.message : String(e);
  if (/out of memory/i.test(message)) return new UserError(`the GPU ran out of memory: ${oneLine(message)} (close other GPU programs, or use --device cpu)`);
  return e;
}

export class CudaDevice implements ComputeDevice {
  readonly info: DeviceInfo;
  private readonly levels = new WeakMap<Codebook, CudaMatrix>();
  /** File reads go through the addon's transfer buffers one at a time. */
  private reads: Promise<unknown> = Promise.resolve();

  private constructor(private readonly native: CudaNative, info: DeviceInfo) {
    this.info = info;
  }

  /** Loads the addon and opens the first GPU; throws CudaUnavailable with the reason. */
  static open(env: NodeJS.ProcessEnv = process.env): CudaDevice {
    const native = loadAddon(env);
    let facts;
    try {
      facts = native.init(cudaLibraryDirs(env));
    } catch (e) {
      throw new CudaUnavailable(oneLine((e as Error).message));
    }
    const version = (v: number) => `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
    return new CudaDevice(native, {
      kind: 'cuda',
      name: facts.name,
      memoryBytes: facts.totalMemory,
      cores: facts.multiprocessors,
      details: {
        compute_capability: facts.computeCapability,
        driver_cuda: version(facts.driverVersion),
        runtime_cuda: version(facts.runtimeVersion),
        cublas: String(facts.cublasVersion),
        cublas_path: facts.cublasPath,
        driver_path: facts.driverPath,
      },
    });
  }

  private alloc(bytes: number): NativeBuffer {
    try {
      return this.native.alloc(Math.max(bytes, 1));
    } catch (e) {
      throw translate(e);
    }
  }

  private newMatrix(rows: number, cols: number): CudaMatrix {
    return new CudaMatrix(this.native, this.alloc(rows * cols * 4), rows, cols);
  }

  async upload(m: Matrix): Promise<DeviceMatrix> {
    if (m.data.length !== m.rows * m.cols) throw new Error(`upload: ${m.data.length} values for ${m.rows}x${m.cols}`);
    const out = this.newMatrix(m.rows, m.cols);
    this.native.upload(out.buf, m.data);
    return out;
  }

  async uploadEncoded(bytes: Uint8Array, dtype: FloatDtype, rows: number, cols: number): Promise<DeviceMatrix> {
    const count = rows * cols;
    if (bytes.length !== count * DTYPE_BYTES[dtype]) throw new Error(`uploadEncoded: ${bytes.length} bytes for a ${rows}x${cols} ${dtype} matrix`);
    const out = this.newMatrix(rows, cols);
    if (dtype === 'F32') {
      this.native.upload(out.buf, bytes);
      return out;
    }
    const raw = new CudaCodes(this.native, this.alloc(bytes.length), bytes.length);
    try {
      this.native.upload(raw.buf, bytes);
      this.native.convert(out.buf, raw.buf, NATIVE_DTYPES[dtype], count);
    } finally {
      raw.dispose();
    }
    return out;
  }

  readFile(fd: number, offset: number, dtype: FloatDtype, rows: number, cols: number): Promise<DeviceMatrix> {
    const run = async () => {
      const out = this.newMatrix(rows, cols);
      try {
        await this.native.readFile(out.buf, fd, offset, NATIVE_DTYPES[dtype], rows * cols);
        return out;
      } catch (e) {
        out.dispose();
        throw translate(e);
      }
    };
    const next = this.reads.then(run, run);
    this.reads = next.catch(() => undefined);
    return next;
  }

  async download(m: DeviceMatrix): Promise<Matrix> {
    const M = mat(m);
    const bytes = await this.native.download(M.buf, M.rows * M.cols * 4);
    return matrix(M.rows, M.cols, new Float32Array(bytes));
  }

  async zeros(rows: number, cols: number): Promise<DeviceMatrix> {
    const out = this.newMatrix(rows, cols);
    this.native.memset(out.buf, 0, rows * cols * 4);
    return out;
  }

  async randomNormal(rows: number, cols: number, seed: number): Promise<DeviceMatrix> {
    const out = this.newMatrix(rows, cols);
    this.native.randomNormal(out.buf, rows * cols, seed >>> 0);
    return out;
  }

  async copyColumns(dst: DeviceMatrix, dstCol: number, src: DeviceMatrix, srcCol: number, count: number): Promise<void> {
    const d = mat(dst);
    const s = mat(src);
    if (d.rows !== s.rows || dstCol < 0 || srcCol < 0 || dstCol + count > d.cols || srcCol + count > s.cols) {
      throw new Error(`copyColumns: columns out of range (${d.rows}x${d.cols} ← ${s.rows}x${s.cols})`);
    }
    if (count > 0) this.native.copy2d(d.buf, d.cols * 4, dstCol * 4, s.buf, s.cols * 4, srcCol * 4, count * 4, d.rows);
  }

  async matmul(a: DeviceMatrix, b: DeviceMatrix, options: MatmulOptions = {}): Promise<DeviceMatrix> {
    const A = mat(a);
    const B = mat(b);
    const transA = options.transA ?? false;
    const transB = options.transB ?? false;
    const [m, ka] = transA ? [A.cols, A.rows] : [A.rows, A.cols];
    const [kb, n] = transB ? [B.cols, B.rows] : [B.rows, B.cols];
    if (ka !== kb) throw new Error(`matmul shape mismatch: ${m}x${ka} · ${kb}x${n}`);
    const out = this.newMatrix(m, n);
    this.native.gemmTyped({ c: out.buf, cType: F32, a: A.buf, b: B.buf, abType: F32, m, n, k: ka, transA, transB, tf32: options.precision === 'tf32' });
    return out;
  }

  async gram(a: DeviceMatrix): Promise<Float64Array> {
    const A = mat(a);
    return this.native.gram(A.buf, A.rows, A.cols);
  }

  /**
   * CholeskyQR on the GPU: the passes run there back to back (Gram, Cholesky and R⁻¹ in one
   * block, Y·R⁻¹), and the host reads one flag per pass once they are done: shifted passes
   * (a numerically singular Gram) are followed by more until `passes` clean ones in a row.
   */
  async orthonormalize(y: DeviceMatrix, passes: 1 | 2): Promise<DeviceMatrix> {
    const Y = mat(y);
    let current: CudaMatrix = Y;
    let clean = 0;
    let total = 0;
    try {
      while (clean < passes && total < MAX_PASSES) {
        const n = Math.min(passes - clean, MAX_PASSES - total);
        const next = this.newMatrix(Y.rows, Y.cols);
        let flags: Int32Array;
        try {
          flags = new Int32Array(await this.native.cholQr(next.buf, current.buf, Y.rows, Y.cols, n));
        } catch (e) {
          next.dispose();
          throw translate(e);
        }
        if (current !== Y) current.dispose();
        current = next;
        total += n;
        for (const f of flags) {
          if (f & CHOLESKY_NON_FINITE) throw new Error('low-rank solver: the matrix contains NaN or infinite values');
          if (f & CHOLESKY_ZERO) return current;
          clean = f & CHOLESKY_SHIFTED ? 0 : clean + 1;
        }
      }
      return current;
    } catch (e) {
      if (current !== Y) current.dispose();
      throw e;
    }
  }

  async lowRankResidual(d: DeviceMatrix, b: DeviceMatrix, a: DeviceMatrix): Promise<DeviceMatrix> {
    const D = mat(d);
    const B = mat(b);
    const A = mat(a);
    if (B.rows !== D.rows || A.cols !== D.cols || B.cols !== A.rows) {
      throw new Error(`lowRankResidual shape mismatch: ${D.rows}x${D.cols} vs ${B.rows}x${B.cols}·${A.rows}x${A.cols}`);
    }
    const out = this.newMatrix(D.rows, D.cols);
    this.native.copy(out.buf, 0, D.buf, 0, D.rows * D.cols * 4);
    // E = D − B·A in full float32: this is the matrix that gets quantized.
    if (B.cols > 0) this.native.gemmTyped({ c: out.buf, cType: F32, a: B.buf, b: A.buf, abType: F32, m: D.rows, n: D.cols, k: B.cols, alpha: -1, beta: 1 });
    return out;
  }

  async sumSquares(m: DeviceMatrix): Promise<number> {
    const M = mat(m);
    return this.native.sumSquares(M.buf, M.rows * M.cols);
  }

  async scaleColumns(m: DeviceMatrix, factors: ArrayLike<number>): Promise<DeviceMatrix> {
    const M = mat(m);
    if (factors.length !== M.cols) throw new Error(`scaleColumns: ${factors.length} factors for ${M.cols} columns`);
    const out = this.newMatrix(M.rows, M.cols);
    this.native.scaleColumns(out.buf, M.buf, M.rows, M.cols, Float32Array.from(factors));
    return out;
  }

  async transpose(m: DeviceMatrix): Promise<DeviceMatrix> {
    const M = mat(m);
    const out = this.newMatrix(M.cols, M.rows);
    this.native.transpose(out.buf, M.buf, M.rows, M.cols);
    return out;
  }

  async findNonFinite(m: DeviceMatrix): Promise<number> {
    const M = mat(m);
    return this.native.findNonFinite(M.buf, M.rows * M.cols);
  }

  /** The codebook's levels on the device, uploaded once per codebook. */
  private levelsOf(codebook: Codebook): CudaMatrix {
    let l = this.levels.get(codebook);
    if (!l || !l.live) {
      if (codebook.levels.length < 2 || codebook.levels.length > 256) throw new Error(`a codebook needs 2 to 256 levels, got ${codebook.levels.length}`);
      l = this.newMatrix(1, codebook.levels.length);
      this.native.upload(l.buf, codebook.levels);
      this.levels.set(codebook, l);
    }
    return l;
  }

  async allocQuantized(count: number, codebook: Codebook): Promise<DeviceQuantized> {
    const blocks = Math.ceil(count / codebook.blockSize);
    const c = new CudaCodes(this.native, this.alloc(count), count);
    try {
      return quantizedOf(c, this.newMatrix(blocks, 1));
    } catch (e) {
      c.dispose();
      throw e;
    }
  }

  private checkQuantized(q: DeviceQuantized, count: number, codebook: Codebook): { codes: CudaCodes; absmax: CudaMatrix } {
    const c = codes(q.codes);
    const a = mat(q.absmax);
    if (c.length !== count || a.rows * a.cols !== Math.ceil(count / codebook.blockSize)) throw new Error('quantized storage does not match the matrix size or block size');
    return { codes: c, absmax: a };
  }

  async quantize(x: DeviceMatrix, ref: DeviceMatrix, out: DeviceQuantized, codebook: Codebook, extras: QuantizeExtras = {}): Promise<QuantizeSums> {
    const X = mat(x);
    const R = mat(ref);
    const count = X.rows * X.cols;
    if (R.rows * R.cols !== count) throw new Error('quantize: x and ref differ in size');
    const q = this.checkQuantized(out, count, codebook);
    const diff = extras.diff ? mat(extras.diff) : null;
    if (diff && diff.rows * diff.cols !== count) throw new Error('quantize: diff differs in size');
    const prev = extras.previous ? this.checkQuantized(extras.previous, count, codebook) : null;
    const levels = this.levelsOf(codebook);
    const sums = await this.native.quantize({ x: X.buf, ref: R.buf, codes: q.codes.buf, absmax: q.absmax.buf, count, blockSize: codebook.blockSize, levels: levels.buf, levelCount: codebook.levels.length, diff: diff?.buf ?? null, prevCodes: prev?.codes.buf ?? null, prevAbsmax: prev?.absmax.buf ?? null, rule: QUANT_RULE_NUMBER[codebook.rule ?? 'absmax'] });
    return { errSq: sums[0], previousErrSq: prev ? sums[1] : NaN };
  }

  async quantizationErrorSq(x: DeviceMatrix, q: DeviceQuantized, codebook: Codebook): Promise<number> {
    const X = mat(x);
    const count = X.rows * X.cols;
    const s = this.checkQuantized(q, count, codebook);
    return this.native.quantError(X.buf, s.codes.buf, s.absmax.buf, count, codebook.blockSize, this.levelsOf(codebook).buf, codebook.levels.length);
  }

  async dequantize(q: DeviceQuantized, codebook: Codebook, rows: number, cols: number): Promise<DeviceMatrix> {
    const s = this.checkQuantized(q, rows * cols, codebook);
    const out = this.newMatrix(rows, cols);
    this.native.dequantize(out.buf, s.codes.buf, s.absmax.buf, rows * cols, codebook.blockSize, this.levelsOf(codebook).buf, codebook.levels.length);
    return out;
  }

  async copyQuantized(dst: DeviceQuantized, src: DeviceQuantized): Promise<void> {
    const dc = codes(dst.codes);
    const sc = codes(src.codes);
    const da = mat(dst.absmax);
    const sa = mat(src.absmax);
    if (dc.length !== sc.length || da.rows * da.cols !== sa.rows * sa.cols) throw new Error('copyQuantized: sizes differ');
    this.native.copy(dc.buf, 0, sc.buf, 0, sc.length);
    this.native.copy(da.buf, 0, sa.buf, 0, sa.rows * sa.cols * 4);
  }

  async packCodes(c: DeviceCodes, bits: number): Promise<Uint8Array> {
    const C = codes(c);
    if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new Error(`packCodes: bits must be 1..8, got ${bits}`);
    const bytes = packedByteLength(C.length, bits);
    const packed = new CudaCodes(this.native, this.alloc(bytes), bytes);
    try {
      this.native.pack(packed.buf, C.buf, C.length, bits);
      return new Uint8Array(await this.native.download(packed.buf, bytes));
    } finally {
      packed.dispose();
    }
  }

  async uploadQuantized(packed: Uint8Array, bits: number, count: number, absmax: Float32Array, codebook: Codebook): Promise<DeviceQuantized> {
    if (packed.length < packedByteLength(count, bits)) throw new UserError(`packed codes too short: ${packed.length} bytes for ${count} ${bits}-bit codes`);
    if (absmax.length !== Math.ceil(count / codebook.blockSize)) throw new Error(`uploadQuantized: ${absmax.length} absmax values for ${count} elements`);
    const q = await this.allocQuantized(count, codebook);
    const bytes = packedByteLength(count, bits);
    const staging = new CudaCodes(this.native, this.alloc(bytes), bytes);
    try {
      this.native.upload(staging.buf, packed.subarray(0, bytes));
      this.native.unpack(codes(q.codes).buf, staging.buf, count, bits);
      this.native.upload(mat(q.absmax).buf, absmax);
    } catch (e) {
      q.dispose();
      throw e;
    } finally {
      staging.dispose();
    }
    return q;
  }

  neuralOps(precision: ComputePrecision, options: NeuralOptions = {}): NeuralOps {
    if (precision === 'bf16' && Number(this.info.details.compute_capability) < 8) {
      throw new UserError(`bf16 needs an NVIDIA GPU of compute capability 8.0 or newer (Ampere); the ${this.info.name} is ${this.info.details.compute_capability}: use --precision fp32`);
    }
    return new CudaNeuralOps(this.native, precision, translate, options);
  }

  memoryUsage(): { inUse: number; peak: number } {
    const m = this.native.memory();
    return { inUse: m.inUse, peak: m.peak };
  }

  /** The device's free and total bytes (all processes' use counted), as the driver reports them. */
  deviceMemory(): { free: number; total: number } {
    const m = this.native.memory();
    return { free: m.free, total: m.total };
  }

  async dispose(): Promise<void> {
    await this.native.synchronize();
  }
}

export { CudaUnavailable };
