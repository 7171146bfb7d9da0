#include "kernels.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <climits>

#include "check.h"

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

int gridFor(int64_t count, int cap = 65535) {
  int64_t g = (count + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(g, cap)));
}

__global__ void convertKernel(float* out, const void* in, int dtype, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v;
    switch (dtype) {
      case kF16: v = __half2float(static_cast<const __half*>(in)[i]); break;
      case kBF16: v = __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(in)[i]) << 16); break;
      case kF64: v = __double2float_rn(static_cast<const double*>(in)[i]); break;
      default: v = static_cast<const float*>(in)[i]; break;
    }
    out[i] = v;
  }
}

// Bit-exact twin of src-main/engine/util/counter-normal.ts (the CPU backend's generator):
// the same operations in the same order, so both backends draw the same sketches. Change both
// together; tensor/device.test.ts compares the two streams.
__device__ __forceinline__ uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

__global__ void randomNormalKernel(float* out, int64_t count, uint32_t inner, uint32_t outer) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // Pair p = i/2 gives two uniforms; Box–Muller's cos for even i, sin for odd i.
    const uint32_t j = static_cast<uint32_t>(2 * (i >> 1));
    const uint32_t h1 = mix32(mix32(j ^ inner) + outer);
    const uint32_t h2 = mix32(mix32((j + 1u) ^ inner) + outer);
    const double u1 = (static_cast<double>(h1) + 1.0) * 2.3283064365386963e-10;
    const double u2 = static_cast<double>(h2) * 2.3283064365386963e-10;
    const double radius = sqrt(-2.0 * log(u1));
    const double angle = 2.0 * 3.141592653589793 * u2;
    out[i] = __double2float_rn(radius * ((i & 1) ? sin(angle) : cos(angle)));
  }
}

__global__ void scaleColumnsKernel(float* out, const float* in, const float* f, int64_t rows, int64_t cols) {
  int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = in[i] * f[i % cols];
  }
}

__global__ void transposeKernel(float* out, const float* in, int64_t rows, int64_t cols) {
  __shared__ float tile[32][33];
  int64_t c0 = static_cast<int64_t>(blockIdx.x) * 32;
  int64_t r0 = static_cast<int64_t>(blockIdx.y) * 32;
  for (int j = threadIdx.y; j < 32; j += 8) {
    int64_t r = r0 + j, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[j][threadIdx.x] = in[r * cols + c];
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    int64_t outRow = c0 + j, outCol = r0 + threadIdx.x;
    if (outRow < cols && outCol < rows) out[outRow * rows + outCol] = tile[threadIdx.x][j];
  }
}

__global__ void toDoubleKernel(double* out, const float* in, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<int64_t>(gridDim.x) * blockDim.x) out[i] = in[i];
}

/** Sums `v` over the block in a fixed order; thread 0 gets the total. */
__device__ double blockSum(double v, double* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  double total = 0;
  if (threadIdx.x == 0) {
    for (int w = 0; w < static_cast<int>(blockDim.x >> 5); w++) total += shared[w];
  }
  __syncthreads();
  return total;
}

__global__ void sumSquaresKernel(double* partials, const float* x, int64_t count) {
  __shared__ double shared[kWarps];
  double s = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double v = x[i];
    s += v * v;
  }
  double total = blockSum(s, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

/** out[k] = Σ_b partials[b·stride + k], one block per k, in a fixed order (deterministic). */
__global__ void reducePartialsKernel(double* out, const double* partials, int blocks, int stride) {
  __shared__ double shared[kWarps];
  int k = blockIdx.x;
  double s = 0;
  for (int b = threadIdx.x; b < blocks; b += blockDim.x) s += partials[static_cast<int64_t>(b) * stride + k];
  double total = blockSum(s, shared);
  if (threadIdx.x == 0) out[k] = total;
}

__global__ void findNonFiniteKernel(unsigned long long* out, const float* x, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (!isfinite(x[i])) atomicMin(out, static_cast<unsigned long long>(i));
  }
}

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
__global__ void __launch_bounds__(kThreads) quantizeKernel(QuantizeArgs a, double* partials) {
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

__global__ void __launch_bounds__(kThreads) dequantizeKernel(float* out, const uint8_t* codes, const float* absmax, const float* levels, int n,
                                                             int64_t count, int64_t blockSize) {
  __shared__ float lv[256];
  __shared__ double mid[256];
  loadCodebook(levels, n, lv, mid);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t blocks = (count + blockSize - 1) / blockSize;
  for (int64_t qb = static_cast<int64_t>(blockIdx.x) * kWarps + warp; qb < blocks; qb += static_cast<int64_t>(gridDim.x) * kWarps) {
    const int64_t start = qb * blockSize;
    const int64_t end = min(start + blockSize, count);
    const float s = absmax[qb];
    for (int64_t i = start + lane; i < end; i += 32) out[i] = __fmul_rn(lv[codes[i]], s);
  }
}

__global__ void packKernel(uint8_t* out, const uint8_t* codes, int64_t count, int bits, int64_t bytes) {
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < bytes; j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
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
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t bit = i * bits;
    const int64_t byte = bit >> 3;
    const int shift = static_cast<int>(bit & 7);
    uint32_t word = packed[byte];
    if (shift + bits > 8) word |= static_cast<uint32_t>(packed[byte + 1]) << 8;
    codes[i] = static_cast<uint8_t>((word >> shift) & mask);
  }
}

int warpBlocksGrid(int64_t count, int64_t blockSize) {
  const int64_t blocks = (count + blockSize - 1) / blockSize;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((blocks + kWarps - 1) / kWarps, 8192)));
}

}  // namespace

int dtypeBytes(int dtype) {
  switch (dtype) {
    case kF16:
    case kBF16: return 2;
    case kF64: return 8;
    default: return 4;
  }
}

void launchConvert(float* out, const void* in, int dtype, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  convertKernel<<<gridFor(count, 8192), kThreads, 0, stream>>>(out, in, dtype, count);
  LAUNCH_CHECK("convert");
}

void launchRandomNormal(float* out, int64_t count, uint32_t seed, cudaStream_t stream) {
  if (count == 0) return;
  auto mix = [](uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
  };
  randomNormalKernel<<<gridFor(count, 8192), kThreads, 0, stream>>>(out, count, mix(seed), mix(seed ^ 0x85ebca6bu));
  LAUNCH_CHECK("randomNormal");
}

void launchScaleColumns(float* out, const float* in, const float* factors, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows * cols == 0) return;
  scaleColumnsKernel<<<gridFor(rows * cols, 8192), kThreads, 0, stream>>>(out, in, factors, rows, cols);
  LAUNCH_CHECK("scaleColumns");
}

void launchTranspose(float* out, const float* in, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows * cols == 0) return;
  if ((rows + 31) / 32 > 65535) throw NativeError("transpose: too many rows");
  dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>((rows + 31) / 32));
  transposeKernel<<<grid, dim3(32, 8), 0, stream>>>(out, in, rows, cols);
  LAUNCH_CHECK("transpose");
}

void launchToDouble(double* out, const float* in, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  toDoubleKernel<<<gridFor(count, 8192), kThreads, 0, stream>>>(out, in, count);
  LAUNCH_CHECK("toDouble");
}

void launchSumSquares(double* out, double* partials, const float* x, int64_t count, cudaStream_t stream) {
  sumSquaresKernel<<<kReduceBlocks, kThreads, 0, stream>>>(partials, x, count);
  LAUNCH_CHECK("sumSquares");
  reducePartialsKernel<<<1, kThreads, 0, stream>>>(out, partials, kReduceBlocks, 1);
  LAUNCH_CHECK("reducePartials");
}

void launchFindNonFinite(unsigned long long* out, const float* x, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  findNonFiniteKernel<<<gridFor(count, 8192), kThreads, 0, stream>>>(out, x, count);
  LAUNCH_CHECK("findNonFinite");
}

int quantizeGrid(int64_t count, int64_t blockSize) { return warpBlocksGrid(count, blockSize); }

void launchQuantize(const QuantizeArgs& a, double* out, double* partials, cudaStream_t stream) {
  const int grid = quantizeGrid(a.count, a.blockSize);
  quantizeKernel<<<grid, kThreads, 0, stream>>>(a, partials);
  LAUNCH_CHECK("quantize");
  reducePartialsKernel<<<2, kThreads, 0, stream>>>(out, partials, grid, 2);
  LAUNCH_CHECK("reducePartials");
}

void launchQuantError(double* out, double* partials, const float* x, const uint8_t* codes, const float* absmax, const float* levels,
                      int levelCount, int64_t count, int64_t blockSize, cudaStream_t stream) {
  const int grid = quantizeGrid(count, blockSize);
  quantErrorKernel<<<grid, kThreads, 0, stream>>>(partials, x, codes, absmax, levels, levelCount, count, blockSize);
  LAUNCH_CHECK("quantError");
  reducePartialsKernel<<<1, kThreads, 0, stream>>>(out, partials, grid, 1);
  LAUNCH_CHECK("reducePartials");
}

void launchDequantize(float* out, const uint8_t* codes, const float* absmax, const float* levels, int levelCount, int64_t count,
                      int64_t blockSize, cudaStream_t stream) {
  if (count == 0) return;
  dequantizeKernel<<<quantizeGrid(count, blockSize), kThreads, 0, stream>>>(out, codes, absmax, levels, levelCount, count, blockSize);
  LAUNCH_CHECK("dequantize");
}

void launchPack(uint8_t* out, const uint8_t* codes, int64_t count, int bits, cudaStream_t stream) {
  if (count == 0) return;
  if (bits == 8) {
    CUDA_CHECK(cudaMemcpyAsync(out, codes, static_cast<size_t>(count), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  const int64_t bytes = (count * bits + 7) / 8;
  packKernel<<<gridFor(bytes, 8192), kThreads, 0, stream>>>(out, codes, count, bits, bytes);
  LAUNCH_CHECK("pack");
}

void launchUnpack(uint8_t* codes, const uint8_t* packed, int64_t count, int bits, cudaStream_t stream) {
  if (count == 0) return;
  if (bits == 8) {
    CUDA_CHECK(cudaMemcpyAsync(codes, packed, static_cast<size_t>(count), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  unpackKernel<<<gridFor(count, 8192), kThreads, 0, stream>>>(codes, packed, count, bits);
  LAUNCH_CHECK("unpack");
}
