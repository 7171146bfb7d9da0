// Finding and loading the native CUDA addon (native/, built by `npm run build:native`) and
// the CUDA libraries it needs at run time. The addon links the CUDA runtime statically and
// opens libcuda (the driver) and cuBLAS itself, so a missing piece is reported by name
// instead of as a dynamic-linker error. Nothing here runs a kernel.
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { findUp } from '../util/find-up';

export const ADDON_FILE = 'loftq_cuda.node';

/** An opaque device allocation owned by the addon (freed by free() or, as a safety net, by GC). */
export interface NativeBuffer {
  readonly __nativeBuffer: true;
}

export interface NativeDeviceInfo {
  name: string;
  totalMemory: number;
  multiprocessors: number;
  computeCapability: string;
  driverVersion: number;
  runtimeVersion: number;
  cublasVersion: number;
  cublasPath: string;
  driverPath: string;
}

/** A whole number ≥ 0 (sizes, counts, offsets): the addon refuses anything else. */
export type Int = number;
/** An element type by its NATIVE_DTYPES code. */
export type Dtype = number;

/**
 * Row-major C = α·op(A)·op(B) + β·C with float32 accumulation, A and B of one type (float32 or
 * bfloat16, tf32 on the tensor cores where asked), C float32 or bfloat16; `batch` such products
 * at fixed element strides; offsets in elements (native/src/blas.cpp). The one product: the
 * low-rank solvers' float32 ones and the transformer's alike.
 */
export interface GemmTypedArgs {
  c: NativeBuffer;
  cType: Dtype;
  a: NativeBuffer;
  b: NativeBuffer;
  abType: Dtype;
  m: Int;
  n: Int;
  k: Int;
  /** @default false */
  transA?: boolean;
  /** @default false */
  transB?: boolean;
  /** Float32 operands only: let the tensor cores round them to tf32. @default false */
  tf32?: boolean;
  /** @default 1 */
  alpha?: number;
  /** @default 0 */
  beta?: number;
  /** @default 1 */
  batch?: Int;
  /** @default 0 */
  strideA?: Int;
  /** @default 0 */
  strideB?: Int;
  /** @default 0 */
  strideC?: Int;
  /** @default 0 */
  offsetA?: Int;
  /** @default 0 */
  offsetB?: Int;
  /** @default 0 */
  offsetC?: Int;
}

/**
 * Blockwise quantization of x fused with ref − Q and the error sums (native/src/quantize.cu);
 * resolves with [Σ(ref − Q)², Σ(x − Q_prev)²].
 */
export interface QuantizeArgs {
  x: NativeBuffer;
  ref: NativeBuffer;
  codes: NativeBuffer;
  absmax: NativeBuffer;
  count: Int;
  blockSize: Int;
  levels: NativeBuffer;
  levelCount: Int;
  /** ref − Q is written here when given. @default null */
  diff?: NativeBuffer | null;
  /** A previous Q of the same shape, whose error on x is measured in the same pass. @default null */
  prevCodes?: NativeBuffer | null;
  /** @default null */
  prevAbsmax?: NativeBuffer | null;
  /** QUANT_RULE_NUMBER of the codebook's rule (tensor/device.ts). */
  rule: Int;
}

/**
 * A head-major copy [batch, heads·repeat, seq, headDim] of x [batch·seq, inStride] (heads from
 * column colOffset), rotated by cos/sin [seq, headDim] where given (native/src/rope.cu).
 */
export interface RopeHeadsArgs {
  out: NativeBuffer;
  outType: Dtype;
  input: NativeBuffer;
  inType: Dtype;
  inStride: Int;
  colOffset: Int;
  batch: Int;
  seq: Int;
  heads: Int;
  headDim: Int;
  /** Each head written this many times (grouped-query attention's shared K/V). */
  repeat: Int;
  cos: NativeBuffer | null;
  sin: NativeBuffer | null;
}

/** Fused bf16 causal attention (native/src/flash-attention.cu); headDim 16, 32, 64 or 128. */
export interface FlashAttentionArgs {
  out: NativeBuffer;
  q: NativeBuffer;
  k: NativeBuffer;
  v: NativeBuffer;
  batch: Int;
  seq: Int;
  heads: Int;
  /** Query heads per K/V head. */
  group: Int;
  headDim: Int;
  /** Keys more than window − 1 positions back are masked; 0: no window. */
  window: Int;
  scale: number;
}

/**
 * AdamW (native/src/optimizer.cu) over elements [offset, offset + count) of float32 p, g, m,
 * v: g / divisor, times clip where clip ≠ 1, then train/adamw.ts's update with its constants.
 */
export interface AdamWArgs {
  p: NativeBuffer;
  g: NativeBuffer;
  m: NativeBuffer;
  v: NativeBuffer;
  offset: Int;
  count: Int;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  eps: number;
  stepSize: number;
  bc2Sqrt: number;
  shrink: number;
  divisor: number;
  clip: number;
}

/**
 * The functions the addon exports, declared once: scripts/addon-api.mjs derives from this
 * interface the addon's argument readers and registration (native/build/generated/addon-api.h)
 * and ADDON_ABI_VERSION below. Each function's C++ body is `js::<name>` in the native/src file
 * of its op. Sizes are element counts unless named bytes; activations are float32 or bfloat16.
 */
export interface CudaNative {
  readonly abiVersion: number;

  // The device, memory and transfers (native/src/memory.cpp).
  init(libDirs: string[]): NativeDeviceInfo;
  alloc(bytes: Int): NativeBuffer;
  free(buf: NativeBuffer): void;
  /** Bytes [offset, offset + bytes) of an allocation as a buffer of its own: freeing it frees nothing; it dies with the allocation. */
  view(buf: NativeBuffer, offsetBytes: Int, bytes: Int): NativeBuffer;
  memset(buf: NativeBuffer, byte: Int, bytes: Int): void;
  copy(dst: NativeBuffer, dstOffsetBytes: Int, src: NativeBuffer, srcOffsetBytes: Int, bytes: Int): void;
  copy2d(dst: NativeBuffer, dstPitch: Int, dstOffset: Int, src: NativeBuffer, srcPitch: Int, srcOffset: Int, widthBytes: Int, rows: Int): void;
  upload(dst: NativeBuffer, data: ArrayBufferView): void;
  download(src: NativeBuffer, bytes: Int): Promise<ArrayBuffer>;
  readFile(dst: NativeBuffer, fd: Int, offset: Int, dtype: Dtype, count: Int): Promise<void>;
  memory(): { inUse: number; peak: number; free: number; total: number };
  /** The peak starts again from what is in use now. */
  resetPeak(): void;
  synchronize(): Promise<void>;

  // Element types (convert.cu), random numbers (random.cu), reductions (reduce.cu), layout (matrix.cu).
  convert(dst: NativeBuffer, src: NativeBuffer, dtype: Dtype, count: Int): void;
  cast(out: NativeBuffer, outType: Dtype, input: NativeBuffer, count: Int): void;
  randomNormal(dst: NativeBuffer, count: Int, seed: Int): void;
  sumSquares(buf: NativeBuffer, count: Int): Promise<number>;
  findNonFinite(buf: NativeBuffer, count: Int): Promise<number>;
  scaleColumns(dst: NativeBuffer, src: NativeBuffer, rows: Int, cols: Int, factors: Float32Array): void;
  transpose(dst: NativeBuffer, src: NativeBuffer, rows: Int, cols: Int): void;

  // Products (blas.cpp) and CholeskyQR (cholesky.cu).
  gemmTyped(o: GemmTypedArgs): void;
  gram(a: NativeBuffer, rows: Int, cols: Int): Promise<Float64Array>;
  /** `passes` CholeskyQR passes src → dst; resolves with one flag per pass (native/src/cholesky.cu). */
  cholQr(dst: NativeBuffer, src: NativeBuffer, rows: Int, cols: Int, passes: Int): Promise<ArrayBuffer>;

  // Quantization (quantize.cu) and dequantization (dequantize.cu).
  quantize(o: QuantizeArgs): Promise<Float64Array>;
  quantError(x: NativeBuffer, codes: NativeBuffer, absmax: NativeBuffer, count: Int, blockSize: Int, levels: NativeBuffer, levelCount: Int): Promise<number>;
  pack(out: NativeBuffer, codes: NativeBuffer, count: Int, bits: Int): void;
  unpack(codes: NativeBuffer, packed: NativeBuffer, count: Int, bits: Int): void;
  /** One-byte codes to float32. */
  dequantize(out: NativeBuffer, codes: NativeBuffer, absmax: NativeBuffer, count: Int, blockSize: Int, levels: NativeBuffer, levelCount: Int): void;
  /** `bits`-bit packed codes to outType. */
  dequantPacked(out: NativeBuffer, outType: Dtype, packed: NativeBuffer, absmax: NativeBuffer, levels: NativeBuffer, levelCount: Int, count: Int, bits: Int, blockSize: Int): void;

  // The transformer's ops, forward and backward side by side; gradients are float32.
  embedRows(out: NativeBuffer, table: NativeBuffer, tableType: Dtype, ids: NativeBuffer, rows: Int, hidden: Int, vocab: Int): void;
  rmsNorm(out: NativeBuffer, outType: Dtype, x: NativeBuffer, w: NativeBuffer, rows: Int, hidden: Int, eps: number): void;
  rmsNormBackward(dx: NativeBuffer, dn: NativeBuffer, x: NativeBuffer, w: NativeBuffer, rows: Int, hidden: Int, eps: number): void;
  ropeHeads(o: RopeHeadsArgs): void;
  ropeHeadsBackward(out: NativeBuffer, d: NativeBuffer, batch: Int, seq: Int, heads: Int, headDim: Int, repeat: Int, cos: NativeBuffer | null, sin: NativeBuffer | null): void;
  mergeHeads(out: NativeBuffer, outType: Dtype, o: NativeBuffer, batch: Int, heads: Int, seq: Int, headDim: Int): void;
  causalSoftmax(p: NativeBuffer, pType: Dtype, scores: NativeBuffer, batch: Int, rows: Int, keys: Int, q0: Int, window: Int): void;
  softmaxBackward(ds: NativeBuffer, dsType: Dtype, p: NativeBuffer, dp: NativeBuffer, rows: Int, keys: Int): void;
  flashAttention(o: FlashAttentionArgs): void;
  swiglu(out: NativeBuffer, outType: Dtype, gate: NativeBuffer, up: NativeBuffer, inType: Dtype, count: Int): void;
  swigluBackward(dgate: NativeBuffer, dup: NativeBuffer, da: NativeBuffer, gate: NativeBuffer, up: NativeBuffer, inType: Dtype, count: Int): void;
  addBias(y: NativeBuffer, bias: NativeBuffer, rows: Int, cols: Int): void;
  addInto(y: NativeBuffer, x: NativeBuffer, count: Int): void;
  rowNll(nll: NativeBuffer, logits: NativeBuffer, targets: NativeBuffer, rows: Int, vocab: Int): void;
  crossEntropyBackward(dlogits: NativeBuffer, dType: Dtype, loss: NativeBuffer, logits: NativeBuffer, targets: NativeBuffer, c: NativeBuffer, rows: Int, vocab: Int): void;

  // Training (optimizer.cu) and profiling (profile.cpp: bench/ only; timing events on the compute stream).
  adamw(o: AdamWArgs): void;
  profileMark(): void;
  /** Waits for the last mark; the milliseconds between consecutive marks. */
  profileCollect(): Float64Array;
}

/** The hash of CudaNative above (scripts/addon-api.mjs --stamp writes it; a test checks it): a stale build is refused by name. */
export const ADDON_ABI_VERSION = 0x9894bb39;

/** dtype codes shared with native/src/dtypes.h. */
export const NATIVE_DTYPES = { F32: 0, F16: 1, BF16: 2, F64: 3 } as const;

export class CudaUnavailable extends Error {}

/** Where the built addon may be: LOFTQ_CUDA_ADDON, the project's native/build, a packaged app's unpacked resources. */
export function addonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.LOFTQ_CUDA_ADDON) out.push(env.LOFTQ_CUDA_ADDON);
  const local = findUp(join('native', 'build'), ADDON_FILE);
  if (local) out.push(join(local, ADDON_FILE));
  const resources = (process as { resourcesPath?: string }).resourcesPath;
  if (resources) out.push(join(resources, 'app.asar.unpacked', 'native', 'build', ADDON_FILE), join(resources, 'native', 'build', ADDON_FILE));
  return out;
}

function globDirs(base: string, pattern: RegExp, tail: string[]): string[] {
  try {
    return readdirSync(base)
      .filter((n) => pattern.test(n))
      .map((n) => join(base, n, ...tail));
  } catch {
    return [];
  }
}

/**
 * Folders that may hold libcublas.so.13, in the order tried: LOFTQ_CUDA_LIB_DIR, the CUDA
 * toolkit (CUDA_HOME / CUDA_PATH, /usr/local/cuda*), pip's nvidia-* wheels in the active
 * virtualenv / conda env / user and system site-packages. The dynamic linker's own search
 * (LD_LIBRARY_PATH, ldconfig) comes last, inside the addon.
 */
export function cudaLibraryDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  for (const d of (env.LOFTQ_CUDA_LIB_DIR ?? '').split(':')) if (d) dirs.push(d);
  for (const root of [env.CUDA_HOME, env.CUDA_PATH, '/usr/local/cuda', ...globDirs('/usr/local', /^cuda-13/, [])]) {
    if (root) dirs.push(join(root, 'lib64'), join(root, 'targets', 'x86_64-linux', 'lib'), join(root, 'lib'));
  }
  const sitePackages: string[] = [];
  for (const prefix of [env.VIRTUAL_ENV, env.CONDA_PREFIX, join(homedir(), '.local'), '/usr/local', '/usr', '/opt/conda', '/opt/torch/.venv']) {
    if (!prefix) continue;
    for (const lib of ['lib', 'lib64']) {
      for (const py of globDirs(join(prefix, lib), /^python3\.\d+$/, [])) sitePackages.push(join(py, 'site-packages'), join(py, 'dist-packages'));
    }
  }
  for (const sp of sitePackages) dirs.push(join(sp, 'nvidia', 'cu13', 'lib'), join(sp, 'nvidia', 'cublas', 'lib'));
  return [...new Set(dirs)].filter((d) => existsSync(d));
}

let loaded: { path: string; native: CudaNative } | null = null;

/** Loads the addon (once per process), or says in one line why it cannot be used. */
export function loadAddon(env: NodeJS.ProcessEnv = process.env): CudaNative {
  if (loaded) return loaded.native;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new CudaUnavailable(`the CUDA addon is built for linux-x64 only (this is ${process.platform}-${process.arch})`);
  }
  const path = addonCandidates(env).find((p) => existsSync(p));
  if (!path) throw new CudaUnavailable('the CUDA addon is not built (run `npm run build:native` on a machine with the CUDA 13 toolkit)');
  const mod = { exports: {} as unknown };
  try {
    process.dlopen(mod, path);
  } catch (e) {
    throw new CudaUnavailable(`the CUDA addon ${path} could not be loaded: ${oneLine((e as Error).message)}`);
  }
  const native = mod.exports as CudaNative;
  if (native.abiVersion !== ADDON_ABI_VERSION) {
    throw new CudaUnavailable(`the CUDA addon ${path} is from another version (ABI ${String(native.abiVersion)}, expected ${ADDON_ABI_VERSION}): rebuild it with \`npm run build:native\``);
  }
  loaded = { path, native };
  return native;
}

export function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, 400);
}
