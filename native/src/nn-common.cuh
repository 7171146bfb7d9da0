// Device helpers shared by the transformer's kernels (nn.cu, nn-backward.cu): the block size,
// grid sizing, float32/bfloat16 loads and stores, grid-stride loops and a block-wide reduction.
// Included inside each file's anonymous namespace.
#pragma once
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

namespace nn_common {

constexpr int kThreads = 256;

inline int gridFor(int64_t count, int cap = 65535 * 8) {
  int64_t g = (count + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(g, cap)));
}

__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }

#define GRID_STRIDE(i, n) for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<int64_t>(gridDim.x) * blockDim.x)

/** Sum (or max) of one value per thread over a block of kThreads; every thread gets the result. */
template <bool Max>
__device__ float blockReduce(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) {
    float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = Max ? fmaxf(v, other) : v + other;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? shared[lane] : (Max ? -INFINITY : 0.f);
    for (int o = 16; o > 0; o >>= 1) {
      float other = __shfl_xor_sync(0xffffffffu, v, o);
      v = Max ? fmaxf(v, other) : v + other;
    }
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

}  // namespace nn_common
