// The device layer seen by the algorithms (quantize, low-rank solvers, initializers, merge):
// matrices live on a device behind handles, and whole-step operations run there. The host
// sees only what it asks for: small k×k matrices, scalars, and final results. A backend (CPU
// through onnxruntime-node, CUDA through the native addon) implements this interface; no
// algorithm imports a backend.
import type { FloatDtype } from '../io/dtypes';
import type { Matrix } from './matrix';
import type { ComputePrecision, NeuralOptions, NeuralOps } from './nn';

export type DeviceKind = 'cpu' | 'cuda';

export interface DeviceInfo {
  kind: DeviceKind;
  /** What the user sees: "NVIDIA H200", "CPU (16 cores)". */
  name: string;
  /** Device memory (GPU) or host memory (CPU), bytes. */
  memoryBytes: number;
  /** CPU threads used, or the GPU's multiprocessors. */
  cores: number;
  /** Backend facts for run records and the app: driver, runtime, library paths, compute capability. */
  details: Record<string, string | number>;
}

/** A row-major float32 matrix resident on a device. Free it with dispose() when done. */
export interface DeviceMatrix {
  readonly rows: number;
  readonly cols: number;
  dispose(): void;
}

/** One quantization code per element (a byte each), resident on a device. */
export interface DeviceCodes {
  readonly length: number;
  dispose(): void;
}

/** A blockwise-quantized matrix on a device: codes and one absmax per block (blocks × 1). */
export interface DeviceQuantized {
  readonly codes: DeviceCodes;
  readonly absmax: DeviceMatrix;
  /** Frees both. */
  dispose(): void;
}

export function quantizedOf(codes: DeviceCodes, absmax: DeviceMatrix): DeviceQuantized {
  return {
    codes,
    absmax,
    dispose() {
      codes.dispose();
      absmax.dispose();
    },
  };
}

/** A codebook as kernels see it: sorted float32 levels, the block size, and how a block's
 *  scale and codes are chosen (absent: 'absmax', levels in [-1, 1]). */
/** How a block's scale and codes are chosen (tensor/quantize-kernel.ts, native/src/quantize.cu). */
export type QuantRule = 'absmax' | 'q4_0' | 'q8_0';

/** The kernels' number for a rule (tensor/quantize-kernel.ts and native/src/quantize.cu). */
export const QUANT_RULE_NUMBER: Record<QuantRule, number> = { absmax: 0, q8_0: 1, q4_0: 2 };

export interface Codebook {
  readonly levels: Float32Array;
  readonly blockSize: number;
  readonly rule?: QuantRule;
}

/**
 * Precision of a product. 'fp32' is full float32 arithmetic; 'tf32' lets a GPU use its tensor
 * cores with float32 inputs rounded to a 10-bit mantissa (~5e-4 relative), float32
 * accumulation. The CPU computes every product in float32.
 */
export type Precision = 'fp32' | 'tf32';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  precision?: Precision;
}

export interface QuantizeExtras {
  /** Receives ref − Q (the matrix whose low-rank approximation comes next). */
  diff?: DeviceMatrix;
  /** Also measure ‖x − dequantize(previous)‖² in the same pass (previous is only read). */
  previous?: DeviceQuantized;
}

export interface QuantizeSums {
  /** ‖ref − Q‖²_F, accumulated in float64. */
  errSq: number;
  /** ‖x − dequantize(previous)‖²_F, or NaN without `previous`. */
  previousErrSq: number;
}

export interface ComputeDevice {
  readonly info: DeviceInfo;

  /** Copies a host matrix to the device. */
  upload(m: Matrix): Promise<DeviceMatrix>;
  /** A matrix from stored little-endian bytes (F32, F16, BF16, F64), converted on the device. */
  uploadEncoded(bytes: Uint8Array, dtype: FloatDtype, rows: number, cols: number): Promise<DeviceMatrix>;
  /**
   * A matrix read from an open file (descriptor `fd`, bytes [offset, offset + rows·cols·size)),
   * converted on the device. The read goes straight into the device's transfer buffers.
   */
  readFile(fd: number, offset: number, dtype: FloatDtype, rows: number, cols: number): Promise<DeviceMatrix>;
  /** A host copy. */
  download(m: DeviceMatrix): Promise<Matrix>;
  zeros(rows: number, cols: number): Promise<DeviceMatrix>;
  /** Standard normal entries from a seeded generator (the stream is the backend's own). */
  randomNormal(rows: number, cols: number, seed: number): Promise<DeviceMatrix>;
  /** dst[:, dstCol .. dstCol+count) = src[:, srcCol .. srcCol+count) (same row count). */
  copyColumns(dst: DeviceMatrix, dstCol: number, src: DeviceMatrix, srcCol: number, count: number): Promise<void>;

  /** op(A)·op(B). */
  matmul(a: DeviceMatrix, b: DeviceMatrix, options?: MatmulOptions): Promise<DeviceMatrix>;
  /** AᵀA accumulated in float64, to the host (k×k row-major) for a tall thin A. */
  gram(a: DeviceMatrix): Promise<Float64Array>;
  /**
   * Orthonormal columns spanning a tall thin Y, by CholeskyQR (tensor/cholesky-qr.ts: Gram
   * and Cholesky in float64, Y·R⁻¹ in float32) with `passes` clean passes after any shifted
   * ones; zeros for Y = 0. A new matrix; y is left as it is.
   */
  orthonormalize(y: DeviceMatrix, passes: 1 | 2): Promise<DeviceMatrix>;
  /** D − B·A (B m×r, A r×n), float32. */
  lowRankResidual(d: DeviceMatrix, b: DeviceMatrix, a: DeviceMatrix): Promise<DeviceMatrix>;
  /** ‖M‖²_F accumulated in float64. */
  sumSquares(m: DeviceMatrix): Promise<number>;
  /** M·diag(factors) (factors.length = cols). */
  scaleColumns(m: DeviceMatrix, factors: ArrayLike<number>): Promise<DeviceMatrix>;
  transpose(m: DeviceMatrix): Promise<DeviceMatrix>;
  /** Index (row-major) of the first NaN or ±∞, or -1. */
  findNonFinite(m: DeviceMatrix): Promise<number>;

  /** Storage for a quantized matrix of `count` elements. */
  allocQuantized(count: number, codebook: Codebook): Promise<DeviceQuantized>;
  /**
   * Blockwise quantization of x into `out` by the codebook's rule (absmax: nearest level of
   * x/absmax, ties to the lower level, decided in float64 so that every backend picks the same
   * codes; q4_0/q8_0: llama.cpp's reference rounding, in float32 as it does it), fused with the
   * error sums and, optionally, ref − Q and the previous Q's error on x.
   */
  quantize(x: DeviceMatrix, ref: DeviceMatrix, out: DeviceQuantized, codebook: Codebook, extras?: QuantizeExtras): Promise<QuantizeSums>;
  /** ‖x − dequantize(q)‖²_F in float64. */
  quantizationErrorSq(x: DeviceMatrix, q: DeviceQuantized, codebook: Codebook): Promise<number>;
  dequantize(q: DeviceQuantized, codebook: Codebook, rows: number, cols: number): Promise<DeviceMatrix>;
  /** dst's codes and absmax = src's. */
  copyQuantized(dst: DeviceQuantized, src: DeviceQuantized): Promise<void>;
  /** The codes as a little-endian bit stream (tensor/packing.ts's layout), to the host. */
  packCodes(codes: DeviceCodes, bits: number): Promise<Uint8Array>;
  /** A quantized matrix from its stored form (packed codes, absmax). */
  uploadQuantized(packed: Uint8Array, bits: number, count: number, absmax: Float32Array, codebook: Codebook): Promise<DeviceQuantized>;

  /**
   * The transformer's operations on this device (tensor/nn.ts), where the backend has them
   * (CUDA); the CPU runs the model as compiled ONNX graphs instead (model/transformer.ts).
   */
  neuralOps?(precision: ComputePrecision, options?: NeuralOptions): NeuralOps;

  /** Bytes of device memory in use now and at most so far (GPU); null where not tracked. */
  memoryUsage(): { inUse: number; peak: number } | null;
  dispose(): Promise<void>;
}

/** Tracks device tensors so that a block of work frees everything it made, whatever happens. */
export class TensorScope {
  private readonly items = new Set<{ dispose(): void }>();

  track<T extends { dispose(): void }>(t: T): T {
    this.items.add(t);
    return t;
  }

  /** Frees one tracked tensor now. */
  release(t: { dispose(): void } | null | undefined): void {
    if (!t) return;
    if (this.items.delete(t)) t.dispose();
  }

  /** Hands a tensor to the caller: the scope no longer frees it. */
  keep<T extends { dispose(): void }>(t: T): T {
    this.items.delete(t);
    return t;
  }

  dispose(): void {
    for (const t of this.items) t.dispose();
    this.items.clear();
  }
}
