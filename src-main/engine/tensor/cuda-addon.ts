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

/** The functions the addon exports (native/src/addon.cpp). Sizes are element counts unless named bytes. */
export interface CudaNative {
  readonly abiVersion: number;
  init(libDirs: string[]): NativeDeviceInfo;
  alloc(bytes: number): NativeBuffer;
  free(buf: NativeBuffer): void;
  memset(buf: NativeBuffer, byte: number, bytes: number): void;
  copy(dst: NativeBuffer, dstOffsetBytes: number, src: NativeBuffer, srcOffsetBytes: number, bytes: number): void;
  copy2d(dst: NativeBuffer, dstPitch: number, dstOffset: number, src: NativeBuffer, srcPitch: number, srcOffset: number, widthBytes: number, rows: number): void;
  upload(dst: NativeBuffer, data: ArrayBufferView): void;
  download(src: NativeBuffer, bytes: number): Promise<ArrayBuffer>;
  readFile(dst: NativeBuffer, fd: number, offset: number, dtype: number, count: number): Promise<void>;
  convert(dst: NativeBuffer, src: NativeBuffer, dtype: number, count: number): void;
  randomNormal(dst: NativeBuffer, count: number, seed: number): void;
  gemm(c: NativeBuffer, a: NativeBuffer, b: NativeBuffer, m: number, n: number, k: number, transA: boolean, transB: boolean, tf32: boolean, alpha: number, beta: number): void;
  gram(a: NativeBuffer, rows: number, cols: number): Promise<Float64Array>;
  /** `passes` CholeskyQR passes src → dst; resolves with one flag per pass (native/src/cholesky.h). */
  cholQr(dst: NativeBuffer, src: NativeBuffer, rows: number, cols: number, passes: number): Promise<ArrayBuffer>;
  sumSquares(buf: NativeBuffer, count: number): Promise<number>;
  scaleColumns(dst: NativeBuffer, src: NativeBuffer, rows: number, cols: number, factors: Float32Array): void;
  transpose(dst: NativeBuffer, src: NativeBuffer, rows: number, cols: number): void;
  findNonFinite(buf: NativeBuffer, count: number): Promise<number>;
  quantize(
    x: NativeBuffer,
    ref: NativeBuffer,
    codes: NativeBuffer,
    absmax: NativeBuffer,
    count: number,
    blockSize: number,
    levels: NativeBuffer,
    levelCount: number,
    diff: NativeBuffer | null,
    prevCodes: NativeBuffer | null,
    prevAbsmax: NativeBuffer | null,
    /** QUANT_RULE_NUMBER of the codebook's rule (quant/codebook.ts). */
    rule: number,
  ): Promise<Float64Array>;
  quantError(x: NativeBuffer, codes: NativeBuffer, absmax: NativeBuffer, count: number, blockSize: number, levels: NativeBuffer, levelCount: number): Promise<number>;
  dequantize(out: NativeBuffer, codes: NativeBuffer, absmax: NativeBuffer, count: number, blockSize: number, levels: NativeBuffer, levelCount: number): void;
  pack(out: NativeBuffer, codes: NativeBuffer, count: number, bits: number): void;
  unpack(codes: NativeBuffer, packed: NativeBuffer, count: number, bits: number): void;
  memory(): { inUse: number; peak: number; free: number; total: number };
  synchronize(): Promise<void>;
  /** The peak starts again from what is in use now. */
  resetPeak(): void;

  // The transformer's kernels (native/src/nn.h). Types are NATIVE_DTYPES codes (F32 or BF16
  // for activations); offsets and strides are in elements.
  gemmTyped(
    c: NativeBuffer, cType: number, a: NativeBuffer, b: NativeBuffer, abType: number,
    m: number, n: number, k: number, transA: boolean, transB: boolean, tf32: boolean, alpha: number, beta: number,
    batch: number, strideA: number, strideB: number, strideC: number, offsetA: number, offsetB: number, offsetC: number,
  ): void;
  embedRows(out: NativeBuffer, table: NativeBuffer, tableType: number, ids: NativeBuffer, rows: number, hidden: number, vocab: number): void;
  rmsNorm(out: NativeBuffer, outType: number, x: NativeBuffer, w: NativeBuffer, rows: number, hidden: number, eps: number): void;
  dequantPacked(out: NativeBuffer, outType: number, packed: NativeBuffer, absmax: NativeBuffer, levels: NativeBuffer, levelCount: number, count: number, bits: number, blockSize: number): void;
  cast(out: NativeBuffer, outType: number, input: NativeBuffer, count: number): void;
  ropeHeads(
    out: NativeBuffer, outType: number, input: NativeBuffer, inType: number, inStride: number, colOffset: number,
    batch: number, seq: number, heads: number, headDim: number, repeat: number, cos: NativeBuffer | null, sin: NativeBuffer | null,
  ): void;
  causalSoftmax(p: NativeBuffer, pType: number, scores: NativeBuffer, batch: number, rows: number, keys: number, q0: number, window: number): void;
  /** Fused bf16 attention (native/src/flash-attention.cu); headDim 16, 32, 64 or 128. */
  flashAttention(out: NativeBuffer, q: NativeBuffer, k: NativeBuffer, v: NativeBuffer, batch: number, seq: number, heads: number, group: number, headDim: number, window: number, scale: number): void;
  mergeHeads(out: NativeBuffer, outType: number, o: NativeBuffer, batch: number, heads: number, seq: number, headDim: number): void;
  swiglu(out: NativeBuffer, outType: number, gate: NativeBuffer, up: NativeBuffer, inType: number, count: number): void;
  addBias(y: NativeBuffer, bias: NativeBuffer, rows: number, cols: number): void;
  addInto(y: NativeBuffer, x: NativeBuffer, count: number): void;
  rowNll(nll: NativeBuffer, logits: NativeBuffer, targets: NativeBuffer, rows: number, vocab: number): void;

  // Backward kernels (native/src/nn-backward.cu); gradients are float32.
  rmsNormBackward(dx: NativeBuffer, dn: NativeBuffer, x: NativeBuffer, w: NativeBuffer, rows: number, hidden: number, eps: number): void;
  ropeHeadsBackward(out: NativeBuffer, d: NativeBuffer, batch: number, seq: number, heads: number, headDim: number, repeat: number, cos: NativeBuffer | null, sin: NativeBuffer | null): void;
  softmaxBackward(ds: NativeBuffer, dsType: number, p: NativeBuffer, dp: NativeBuffer, rows: number, keys: number): void;
  swigluBackward(dgate: NativeBuffer, dup: NativeBuffer, da: NativeBuffer, gate: NativeBuffer, up: NativeBuffer, inType: number, count: number): void;
  crossEntropyBackward(dlogits: NativeBuffer, dType: number, loss: NativeBuffer, logits: NativeBuffer, targets: NativeBuffer, c: NativeBuffer, rows: number, vocab: number): void;

  /** Bytes [offset, offset + bytes) of an allocation as a buffer of its own: freeing it frees nothing; it dies with the allocation. */
  view(buf: NativeBuffer, offsetBytes: number, bytes: number): NativeBuffer;
  /**
   * AdamW (native/src/optimizer.h) over elements [offset, offset + count) of float32 p, g, m, v:
   * g / divisor, times clip where clip ≠ 1, then train/adamw.ts's update with its constants.
   */
  adamw(
    p: NativeBuffer, g: NativeBuffer, m: NativeBuffer, v: NativeBuffer, offset: number, count: number,
    beta1: number, oneMinusBeta1: number, beta2: number, oneMinusBeta2: number, eps: number, stepSize: number, bc2Sqrt: number, shrink: number, divisor: number, clip: number,
  ): void;
  /** Profiling (bench/ only): a timing event on the compute stream; collect waits for the last and gives the milliseconds between consecutive marks. */
  profileMark(): void;
  profileCollect(): Float64Array;
}

/** Bumped with every change of the exports above; a stale build is refused by name. */
export const ADDON_ABI_VERSION = 4;

/** dtype codes shared with native/src/kernels.cuh. */
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
