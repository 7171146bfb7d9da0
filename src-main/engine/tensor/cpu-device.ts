// The CPU backend of the device layer: matrices are host Float32Arrays; products run on
// onnxruntime-node's CPU provider (MLAS), each operation one small cached graph with symbolic
// dimensions; the quantize pass runs the plain-JS kernel on every core.
import { read } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { promisify } from 'node:util';
import { UserError } from '../errors';
import { hostCholeskyQr } from './cholesky-qr';
import { DTYPE_BYTES, floatBytesToF32, type FloatDtype } from '../io/dtypes';
import { HostQuantizer, type Quantized } from './host-quantizer';
import { packCodes, unpackCodes } from './packing';
import { ParallelQuantizer, type QuantizeSession } from './parallel-quantizer';
import { fillNormal } from '../util/counter-normal';
import {
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
import { matrix, transpose, type Matrix } from './matrix';
import { OnnxGraph } from './onnx-graph';
import { hostTensor, OrtRuntime, ortVersion } from './ort-runtime';

const readAt = promisify(read);

export class CpuMatrix implements DeviceMatrix {
  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly data: Float32Array,
  ) {}
  dispose(): void {}
}

class CpuCodes implements DeviceCodes {
  constructor(readonly data: Uint8Array) {}
  get length(): number {
    return this.data.length;
  }
  dispose(): void {}
}

function cpuMatrix(m: DeviceMatrix): CpuMatrix {
  if (!(m instanceof CpuMatrix)) throw new Error('a matrix of another device was passed to the CPU device');
  return m;
}

function cpuCodes(c: DeviceCodes): CpuCodes {
  if (!(c instanceof CpuCodes)) throw new Error('codes of another device were passed to the CPU device');
  return c;
}

function hostQuantized(q: DeviceQuantized): Quantized {
  return { codes: cpuCodes(q.codes).data, absmax: cpuMatrix(q.absmax).data };
}

function wrap(m: Matrix): CpuMatrix {
  return new CpuMatrix(m.rows, m.cols, m.data);
}

function matmulGraph(transA: boolean, transB: boolean): OnnxGraph {
  const g = new OnnxGraph('matmul');
  g.input('a', 'float32', transA ? ['k', 'm'] : ['m', 'k']);
  g.input('b', 'float32', transB ? ['n', 'k'] : ['k', 'n']);
  g.op('Gemm', ['a', 'b'], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 }, 'c');
  g.output('c', 'float32', ['m', 'n']);
  return g;
}

function gramGraph(): OnnxGraph {
  const g = new OnnxGraph('gram');
  g.input('a', 'float32', ['m', 'k']);
  const a64 = g.op('Cast', ['a'], { to: 11 });
  const at = g.op('Transpose', [a64], { perm: [1, 0] });
  g.op('MatMul', [at, a64], {}, 'g');
  g.output('g', 'float64', ['k', 'k']);
  return g;
}

function residualGraph(): OnnxGraph {
  const g = new OnnxGraph('lowrank_residual');
  g.input('d', 'float32', ['m', 'n']);
  g.input('b', 'float32', ['m', 'r']);
  g.input('a', 'float32', ['r', 'n']);
  const ba = g.op('MatMul', ['b', 'a']);
  g.op('Sub', ['d', ba], {}, 'e');
  g.output('e', 'float32', ['m', 'n']);
  return g;
}

export class CpuDevice implements ComputeDevice {
  readonly info: DeviceInfo;
  private readonly runtime: OrtRuntime;
  private readonly parallel: ParallelQuantizer;
  private readonly quantizers = new WeakMap<Codebook, HostQuantizer>();
  /** Worker sessions keep their parts of `ref` (W) across the steps of one matrix. */
  private readonly sessions = new WeakMap<CpuMatrix, Map<HostQuantizer, QuantizeSession | null>>();

  /** threads: ORT intra-op threads and quantize workers; 0 uses every core. */
  constructor(threads = 0) {
    const cores = threads > 0 ? threads : availableParallelism();
    this.runtime = new OrtRuntime({ provider: 'cpu', threads });
    this.parallel = new ParallelQuantizer(cores);
    this.info = {
      kind: 'cpu',
      name: `CPU (${cores} ${cores === 1 ? 'thread' : 'threads'})`,
      memoryBytes: totalmem(),
      cores,
      details: { cpu: cpus()[0]?.model ?? 'unknown', onnxruntime: ortVersion() },
    };
  }

  async upload(m: Matrix): Promise<DeviceMatrix> {
    return new CpuMatrix(m.rows, m.cols, m.data.slice());
  }

  async uploadEncoded(bytes: Uint8Array, dtype: FloatDtype, rows: number, cols: number): Promise<DeviceMatrix> {
    if (bytes.length !== rows * cols * DTYPE_BYTES[dtype]) throw new Error(`uploadEncoded: ${bytes.length} bytes for a ${rows}x${cols} ${dtype} matrix`);
    // floatBytesToF32 may view F32 bytes without copying: copy so the caller keeps its buffer.
    const data = floatBytesToF32(bytes, dtype);
    return new CpuMatrix(rows, cols, data.buffer === bytes.buffer ? data.slice() : data);
  }

  async readFile(fd: number, offset: number, dtype: FloatDtype, rows: number, cols: number): Promise<DeviceMatrix> {
    const buf = new Uint8Array(rows * cols * DTYPE_BYTES[dtype]);
    for (let done = 0; done < buf.length; ) {
      const len = Math.min(buf.length - done, 1 << 30);
      const { bytesRead } = await readAt(fd, buf, done, len, offset + done);
      if (bytesRead === 0) throw new UserError(`file is truncated: a tensor needs bytes ${offset}..${offset + buf.length}, the file ends at ${offset + done}`);
      done += bytesRead;
    }
    return new CpuMatrix(rows, cols, floatBytesToF32(buf, dtype));
  }

  async download(m: DeviceMatrix): Promise<Matrix> {
    const c = cpuMatrix(m);
    return matrix(c.rows, c.cols, c.data.slice());
  }

  async zeros(rows: number, cols: number): Promise<DeviceMatrix> {
    return new CpuMatrix(rows, cols, new Float32Array(rows * cols));
  }

  async randomNormal(rows: number, cols: number, seed: number): Promise<DeviceMatrix> {
    return new CpuMatrix(rows, cols, fillNormal(new Float32Array(rows * cols), seed));
  }

  async copyColumns(dst: DeviceMatrix, dstCol: number, src: DeviceMatrix, srcCol: number, count: number): Promise<void> {
    const d = cpuMatrix(dst);
    const s = cpuMatrix(src);
    if (d.rows !== s.rows || dstCol + count > d.cols || srcCol + count > s.cols || dstCol < 0 || srcCol < 0) {
      throw new Error(`copyColumns: columns out of range (${d.rows}x${d.cols} ← ${s.rows}x${s.cols})`);
    }
    for (let i = 0; i < d.rows; i++) d.data.set(s.data.subarray(i * s.cols + srcCol, i * s.cols + srcCol + count), i * d.cols + dstCol);
  }

  async matmul(a: DeviceMatrix, b: DeviceMatrix, options: MatmulOptions = {}): Promise<DeviceMatrix> {
    const A = cpuMatrix(a);
    const B = cpuMatrix(b);
    const transA = options.transA ?? false;
    const transB = options.transB ?? false;
    const [m, ka] = transA ? [A.cols, A.rows] : [A.rows, A.cols];
    const [kb, n] = transB ? [B.cols, B.rows] : [B.rows, B.cols];
    if (ka !== kb) throw new Error(`matmul shape mismatch: ${m}x${ka} · ${kb}x${n}`);
    const out = await this.runtime.run(`matmul:${transA}:${transB}`, () => matmulGraph(transA, transB), {
      a: hostTensor(A.data, [A.rows, A.cols]),
      b: hostTensor(B.data, [B.rows, B.cols]),
    });
    return new CpuMatrix(m, n, out.c.data as Float32Array);
  }

  async gram(a: DeviceMatrix): Promise<Float64Array> {
    const A = cpuMatrix(a);
    const out = await this.runtime.run('gram', gramGraph, { a: hostTensor(A.data, [A.rows, A.cols]) });
    return out.g.data as Float64Array;
  }

  async orthonormalize(y: DeviceMatrix, passes: 1 | 2): Promise<DeviceMatrix> {
    return (await hostCholeskyQr(this, y, { passes })).q;
  }

  async lowRankResidual(d: DeviceMatrix, b: DeviceMatrix, a: DeviceMatrix): Promise<DeviceMatrix> {
    const D = cpuMatrix(d);
    const B = cpuMatrix(b);
    const A = cpuMatrix(a);
    if (B.rows !== D.rows || A.cols !== D.cols || B.cols !== A.rows) {
      throw new Error(`lowRankResidual shape mismatch: ${D.rows}x${D.cols} vs ${B.rows}x${B.cols}·${A.rows}x${A.cols}`);
    }
    const out = await this.runtime.run('lowrank_residual', residualGraph, {
      d: hostTensor(D.data, [D.rows, D.cols]),
      b: hostTensor(B.data, [B.rows, B.cols]),
      a: hostTensor(A.data, [A.rows, A.cols]),
    });
    return new CpuMatrix(D.rows, D.cols, out.e.data as Float32Array);
  }

  async sumSquares(m: DeviceMatrix): Promise<number> {
    const { data } = cpuMatrix(m);
    let s = 0;
    for (let i = 0; i < data.length; i++) s += data[i] * data[i];
    return s;
  }

  async scaleColumns(m: DeviceMatrix, factors: ArrayLike<number>): Promise<DeviceMatrix> {
    const M = cpuMatrix(m);
    if (factors.length !== M.cols) throw new Error(`scaleColumns: ${factors.length} factors for ${M.cols} columns`);
    const out = new Float32Array(M.data.length);
    for (let i = 0; i < M.rows; i++) for (let j = 0; j < M.cols; j++) out[i * M.cols + j] = M.data[i * M.cols + j] * factors[j];
    return new CpuMatrix(M.rows, M.cols, out);
  }

  async transpose(m: DeviceMatrix): Promise<DeviceMatrix> {
    return wrap(transpose(cpuMatrix(m)));
  }

  async findNonFinite(m: DeviceMatrix): Promise<number> {
    const { data } = cpuMatrix(m);
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
    return -1;
  }

  private quantizer(codebook: Codebook): HostQuantizer {
    let q = this.quantizers.get(codebook);
    if (!q) {
      q = new HostQuantizer(codebook);
      this.quantizers.set(codebook, q);
    }
    return q;
  }

  async allocQuantized(count: number, codebook: Codebook): Promise<DeviceQuantized> {
    return quantizedOf(new CpuCodes(new Uint8Array(count)), new CpuMatrix(Math.ceil(count / codebook.blockSize), 1, new Float32Array(Math.ceil(count / codebook.blockSize))));
  }

  async quantize(x: DeviceMatrix, ref: DeviceMatrix, out: DeviceQuantized, codebook: Codebook, extras: QuantizeExtras = {}): Promise<QuantizeSums> {
    const X = cpuMatrix(x);
    const R = cpuMatrix(ref);
    const q = hostQuantized(out);
    if (X.data.length !== R.data.length || q.codes.length !== X.data.length) throw new Error('quantize: x, ref and out differ in size');
    const quantizer = this.quantizer(codebook);
    const diff = extras.diff ? cpuMatrix(extras.diff).data : null;
    const previous = extras.previous ? { q: hostQuantized(extras.previous), out: new Float64Array(1) } : undefined;
    const session = diff ? this.session(quantizer, R) : null;
    const errSq = session && diff ? await session.quantizeInto(X.data, q, diff, previous) : quantizer.quantizeInto(X.data, q, R.data, diff, previous);
    return { errSq, previousErrSq: previous ? previous.out[0] : NaN };
  }

  private session(quantizer: HostQuantizer, ref: CpuMatrix): QuantizeSession | null {
    let byQuantizer = this.sessions.get(ref);
    if (!byQuantizer) {
      byQuantizer = new Map();
      this.sessions.set(ref, byQuantizer);
    }
    if (!byQuantizer.has(quantizer)) byQuantizer.set(quantizer, this.parallel.session(quantizer, ref.data));
    return byQuantizer.get(quantizer) ?? null;
  }

  async quantizationErrorSq(x: DeviceMatrix, q: DeviceQuantized, codebook: Codebook): Promise<number> {
    return this.quantizer(codebook).errorSq(cpuMatrix(x).data, hostQuantized(q));
  }

  async dequantize(q: DeviceQuantized, codebook: Codebook, rows: number, cols: number): Promise<DeviceMatrix> {
    return new CpuMatrix(rows, cols, this.quantizer(codebook).dequantize(hostQuantized(q)));
  }

  async copyQuantized(dst: DeviceQuantized, src: DeviceQuantized): Promise<void> {
    const d = hostQuantized(dst);
    const s = hostQuantized(src);
    d.codes.set(s.codes);
    d.absmax.set(s.absmax);
  }

  async packCodes(codes: DeviceCodes, bits: number): Promise<Uint8Array> {
    return packCodes(cpuCodes(codes).data, bits);
  }

  async uploadQuantized(packed: Uint8Array, bits: number, count: number, absmax: Float32Array, codebook: Codebook): Promise<DeviceQuantized> {
    if (absmax.length !== Math.ceil(count / codebook.blockSize)) throw new Error(`uploadQuantized: ${absmax.length} absmax values for ${count} elements`);
    return quantizedOf(new CpuCodes(unpackCodes(packed, bits, count)), new CpuMatrix(absmax.length, 1, absmax.slice()));
  }

  memoryUsage(): null {
    return null;
  }

  async dispose(): Promise<void> {
    await this.runtime.dispose();
    await this.parallel.dispose();
  }
}
