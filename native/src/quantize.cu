// Blockwise quantization on the GPU, the twin of src-main/engine/tensor/quantize-kernel.ts
// (the same codes bit for bit): the fused quantize pass (absmax or llama.cpp's q4_0/q8_0
// rule, codes, ref − Q, the error sums, the previous Q's error), the error of a Q, and codes
// ↔ the little-endian bit stream of quantized.safetensors (tensor/packing.ts's layout).
#include <climits>

#include <cuda_fp16.h>

#include "addon-api.h"
#include "common.cuh"
#include "context.h"
#include "reduce.cuh"

namespace {

using namespace common;

struct QuantizeKernelArgs {
  const float* x;
  const float* ref;
  uint8_t* codes;
  float* absmax;
  float* diff;              // may be null
  const uint8_t* prevCodes; // may be null
  const float* prevAbsmax;  // may be null
  const float* levels;
  int levelCount;
  int64_t count;
  int64_t blockSize;
  // How scale and codes are chosen: 0 absmax (scale = the block's absmax, nearest level of
  // x/absmax), 1 q8_0 and 2 q4_0 (llama.cpp's reference quantizers in float32, the scale kept
  // being llama.cpp's fp16 d; see tensor/quantize-kernel.ts).
  int rule;
};

/** Levels and the midpoints between them (float64, +∞ last) in shared memory. */
__device__ void loadCodebook(const float* levels, int n, float* lv, double* mid) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) lv[i] = levels[i];
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) mid[i] = i < n - 1 ? (static_cast<double>(lv[i]) + static_cast<double>(lv[i + 1])) / 2 : INFINITY;
  __syncthreads();
}

// One warp per quantization block: a pass for the absmax (and the previous Q's error), then
// a pass for the codes. x/absmax and the nearest-level search are float64, exactly as the CPU
// kernel decides them, so both backends pick the same codes for the same input. The ggml
// rules (q8_0, q4_0) are llama.cpp's float32 steps with every operation rounded as there
// (no contraction into FMAs), so they match the CPU kernel and libggml bit for bit.
__global__ void __launch_bounds__(kThreads) quantizeKernel(QuantizeKernelArgs a, double* partials) {
  __shared__ float lv[256];
  __shared__ double mid[256];
  __shared__ double shared[kWarps];
  const int n = a.levelCount;
  loadCodebook(a.levels, n, lv, mid);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t blocks = (a.count + a.blockSize - 1) / a.blockSize;
  double err = 0, prevErr = 0;
  for (int64_t qb = static_cast<int64_t>(blockIdx.x) * kWarps + warp; qb < blocks; qb += static_cast<int64_t>(gridDim.x) * kWarps) {
    const int64_t start = qb * a.blockSize;
    const int64_t end = min(start + a.blockSize, a.count);
    float amax = 0.f;
    // q4_0 scales by the value of largest magnitude, the first one in index order.
    float signedMax = 0.f;
    long long maxAt = LLONG_MAX;
    const float ps = a.prevCodes ? a.prevAbsmax[qb] : 0.f;
    for (int64_t i = start + lane; i < end; i += 32) {
      const float x = a.x[i];
      if (fabsf(x) > amax) {
        amax = fabsf(x);
        signedMax = x;
        maxAt = i;
      }
      if (a.prevCodes) {
        const double e = static_cast<double>(x) - static_cast<double>(__fmul_rn(lv[a.prevCodes[i]], ps));
        prevErr += e * e;
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float oa = __shfl_xor_sync(0xffffffffu, amax, o);
      const float os = __shfl_xor_sync(0xffffffffu, signedMax, o);
      const long long oi = __shfl_xor_sync(0xffffffffu, maxAt, o);
      if (oa > amax || (oa == amax && oi < maxAt)) {
        amax = oa;
        signedMax = os;
        maxAt = oi;
      }
    }
    if (a.rule != 0) {
      const float d = a.rule == 1 ? __fdiv_rn(amax, 127.f) : __fdiv_rn(signedMax, -8.f);
      const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
      const float scale = __half2float(__float2half_rn(d));
      if (lane == 0) a.absmax[qb] = scale;
      for (int64_t i = start + lane; i < end; i += 32) {
        const float v = __fmul_rn(a.x[i], id);
        const int c = a.rule == 1 ? static_cast<int>(roundf(v)) + 128 : min(15, static_cast<int>(__fadd_rn(v, 8.5f)));
        a.codes[i] = static_cast<uint8_t>(c);
        const double e = static_cast<double>(a.ref[i]) - static_cast<double>(__fmul_rn(lv[c], scale));
        if (a.diff) a.diff[i] = __double2float_rn(e);
        err += e * e;
      }
      continue;
    }
    if (lane == 0) a.absmax[qb] = amax;
    const double inv = amax > 0.f ? 1.0 / static_cast<double>(amax) : 0.0;
    for (int64_t i = start + lane; i < end; i += 32) {
      const double t = static_cast<double>(a.x[i]) * inv;
      int lo = 0, hi = n - 1;
      while (lo < hi) {
        const int m = (lo + hi) >> 1;
        if (t > mid[m]) lo = m + 1;
        else hi = m;
      }
      a.codes[i] = static_cast<uint8_t>(lo);
      const double d = static_cast<double>(a.ref[i]) - static_cast<double>(__fmul_rn(lv[lo], amax));
      if (a.diff) a.diff[i] = __double2float_rn(d);
      err += d * d;
    }
  }
  const double e = blockSum(err, shared);
  const double p = blockSum(prevErr, shared);
  if (threadIdx.x == 0) {
    partials[2 * static_cast<int64_t>(blockIdx.x)] = e;
    partials[2 * static_cast<int64_t>(blockIdx.x) + 1] = p;
  }
}

__global__ void __launch_bounds__(kThreads) quantErrorKernel(double* partials, const float* x, const uint8_t* codes, const float* absmax,
                                                             const float* levels, int n, int64_t count, int64_t blockSize) {
  __shared__ float lv[256];
  __shared__ double mid[256];
  __shared__ double shared[kWarps];
  loadCodebook(levels, n, lv, mid);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t blocks = (count + blockSize - 1) / blockSize;
  double err = 0;
  for (int64_t qb = static_cast<int64_t>(blockIdx.x) * kWarps + warp; qb < blocks; qb += static_cast<int64_t>(gridDim.x) * kWarps) {
    const int64_t start = qb * blockSize;
    const int64_t end = min(start + blockSize, count);
    const float s = absmax[qb];
    for (int64_t i = start + lane; i < end; i += 32) {
      const double d = static_cast<double>(x[i]) - static_cast<double>(__fmul_rn(lv[codes[i]], s));
      err += d * d;
    }
  }
  const double e = blockSum(err, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = e;
}

__global__ void packKernel(uint8_t* out, const uint8_t* codes, int64_t count, int bits, int64_t bytes) {
  const uint32_t mask = (1u << bits) - 1;
  GRID_STRIDE(j, bytes) {
    const int64_t bit0 = j * 8;
    const int64_t first = bit0 / bits;
    const int64_t last = min((bit0 + 7) / bits, count - 1);
    uint32_t v = 0;
    for (int64_t e = first; e <= last; e++) {
      const int64_t shift = e * bits - bit0;
      const uint32_t c = codes[e] & mask;
      v |= shift >= 0 ? (c << shift) : (c >> (-shift));
    }
    out[j] = static_cast<uint8_t>(v & 0xffu);
  }
}

__global__ void unpackKernel(uint8_t* codes, const uint8_t* packed, int64_t count, int bits) {
  const uint32_t mask = (1u << bits) - 1;
  GRID_STRIDE(i, count) {
    const int64_t bit = i * bits;
    const int64_t byte = bit >> 3;
    const int shift = static_cast<int>(bit & 7);
    uint32_t word = packed[byte];
    if (shift + bits > 8) word |= static_cast<uint32_t>(packed[byte + 1]) << 8;
    codes[i] = static_cast<uint8_t>((word >> shift) & mask);
  }
}

/** One warp per quantization block, eight warps a block of threads. */
int warpBlocksGrid(int64_t count, int64_t blockSize) {
  const int64_t blocks = (count + blockSize - 1) / blockSize;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((blocks + kWarps - 1) / kWarps, 8192)));
}

void checkCodes(const Buffer* codes, const Buffer* absmax, const Buffer* levels, int64_t count, int64_t blockSize, int64_t levelCount, const char* what) {
  checkBytes(codes, static_cast<size_t>(count), what);
  checkBytes(absmax, static_cast<size_t>((count + blockSize - 1) / blockSize) * 4, what);
  checkBytes(levels, static_cast<size_t>(levelCount) * 4, what);
}

}  // namespace

namespace js {

/** Resolves with [Σ(ref − Q)², Σ(x − Q_prev)²] (the second 0 without a previous Q). */
napi_value quantize(napi_env env, const QuantizeArgs& a) {
  requireRange(a.blockSize, 1, INT64_MAX, "quantize: blockSize");
  requireRange(a.levelCount, 2, 256, "quantize: levelCount");
  requireRange(a.rule, 0, 2, "quantize: rule");
  if (a.rule != 0 && a.levelCount != (a.rule == 1 ? 256 : 16)) throw JsError("quantize: the q8_0/q4_0 rules need 256/16 integer levels");
  checkBytes(a.x, static_cast<size_t>(a.count) * 4, "quantize x");
  checkBytes(a.ref, static_cast<size_t>(a.count) * 4, "quantize ref");
  checkCodes(a.codes, a.absmax, a.levels, a.count, a.blockSize, a.levelCount, "quantize");
  if (a.diff) checkBytes(a.diff, static_cast<size_t>(a.count) * 4, "quantize diff");
  if ((a.prevCodes == nullptr) != (a.prevAbsmax == nullptr)) throw JsError("quantize: previous codes and absmax go together");
  if (a.prevCodes) checkCodes(a.prevCodes, a.prevAbsmax, a.levels, a.count, a.blockSize, a.levelCount, "quantize previous");
  QuantizeKernelArgs q{};
  q.x = at<float>(a.x);
  q.ref = at<float>(a.ref);
  q.codes = at<uint8_t>(a.codes);
  q.absmax = at<float>(a.absmax);
  q.diff = a.diff ? at<float>(a.diff) : nullptr;
  q.prevCodes = a.prevCodes ? at<uint8_t>(a.prevCodes) : nullptr;
  q.prevAbsmax = a.prevAbsmax ? at<float>(a.prevAbsmax) : nullptr;
  q.levels = at<float>(a.levels);
  q.levelCount = static_cast<int>(a.levelCount);
  q.count = a.count;
  q.blockSize = a.blockSize;
  q.rule = static_cast<int>(a.rule);
  const int grid = warpBlocksGrid(q.count, q.blockSize);
  Temp partials(static_cast<size_t>(2 * grid) * sizeof(double));
  Temp out(2 * sizeof(double));
  cudaStream_t stream = ctx().stream;
  quantizeKernel<<<grid, kThreads, 0, stream>>>(q, partials.as<double>());
  LAUNCH_CHECK("quantize");
  launchReducePartials(out.as<double>(), partials.as<double>(), grid, 2, 2, stream);
  return deliver(env, out.ptr, 2 * sizeof(double), ResultKind::Float64s);
}

/** Resolves with Σ(x − dequantize(codes, absmax))². */
napi_value quantError(napi_env env, const QuantErrorArgs& a) {
  requireRange(a.blockSize, 1, INT64_MAX, "quantError: blockSize");
  requireRange(a.levelCount, 2, 256, "quantError: levelCount");
  checkBytes(a.x, static_cast<size_t>(a.count) * 4, "quantError x");
  checkCodes(a.codes, a.absmax, a.levels, a.count, a.blockSize, a.levelCount, "quantError");
  const int grid = warpBlocksGrid(a.count, a.blockSize);
  Temp partials(static_cast<size_t>(grid) * sizeof(double));
  Temp out(sizeof(double));
  cudaStream_t stream = ctx().stream;
  quantErrorKernel<<<grid, kThreads, 0, stream>>>(partials.as<double>(), at<float>(a.x), at<uint8_t>(a.codes), at<float>(a.absmax), at<float>(a.levels),
                                                  static_cast<int>(a.levelCount), a.count, a.blockSize);
  LAUNCH_CHECK("quantError");
  launchReducePartials(out.as<double>(), partials.as<double>(), grid, 1, 1, stream);
  return deliver(env, out.ptr, sizeof(double), ResultKind::Number);
}

napi_value pack(napi_env env, const PackArgs& a) {
  requireRange(a.bits, 1, 8, "pack: bits");
  const int64_t count = a.count;
  const int bits = static_cast<int>(a.bits);
  checkBytes(a.out, static_cast<size_t>((count * bits + 7) / 8), "pack out");
  checkBytes(a.codes, static_cast<size_t>(count), "pack codes");
  if (count == 0) return undefined(env);
  if (bits == 8) {
    CUDA_CHECK(cudaMemcpyAsync(a.out->ptr, a.codes->ptr, static_cast<size_t>(count), cudaMemcpyDeviceToDevice, ctx().stream));
    return undefined(env);
  }
  const int64_t bytes = (count * bits + 7) / 8;
  packKernel<<<gridFor(bytes, 8192), kThreads, 0, ctx().stream>>>(at<uint8_t>(a.out), at<uint8_t>(a.codes), count, bits, bytes);
  LAUNCH_CHECK("pack");
  return undefined(env);
}

napi_value unpack(napi_env env, const UnpackArgs& a) {
  requireRange(a.bits, 1, 8, "unpack: bits");
  const int64_t count = a.count;
  const int bits = static_cast<int>(a.bits);
  checkBytes(a.codes, static_cast<size_t>(count), "unpack codes");
  checkBytes(a.packed, static_cast<size_t>((count * bits + 7) / 8), "unpack packed");
  if (count == 0) return undefined(env);
  if (bits == 8) {
    CUDA_CHECK(cudaMemcpyAsync(a.codes->ptr, a.packed->ptr, static_cast<size_t>(count), cudaMemcpyDeviceToDevice, ctx().stream));
    return undefined(env);
  }
  unpackKernel<<<gridFor(count, 8192), kThreads, 0, ctx().stream>>>(at<uint8_t>(a.codes), at<uint8_t>(a.packed), count, bits);
  LAUNCH_CHECK("unpack");
  return undefined(env);
}

}  // namespace js
