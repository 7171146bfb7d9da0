// What the kernels of every op share: the block size, grid sizing, float32/bfloat16 loads and
// stores, grid-stride loops, block-wide reductions (float32 sum or max; float64 sum in a fixed
// order), the one row log-sum-exp (cross-entropy and softmax both use it), and the dispatch
// from a dtype code to the kernel instance of that element type.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "check.h"
#include "dtypes.h"

namespace common {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

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

/** Sums `v` over the block in a fixed order (deterministic); thread 0 gets the total. `shared` holds kWarps doubles. */
__device__ __forceinline__ double blockSum(double v, double* shared) {
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

/** A row's max m and Σ exp(z − m): its log-sum-exp is log(sum) + m. */
struct RowExpSum {
  float max;
  float sum;
};

/**
 * The row log-sum-exp's parts over z[lo..hi] by one block (thread t takes lo + t, lo + t +
 * kThreads, …), every thread getting them: the one implementation behind the head's
 * cross-entropy (forward and backward) and attention's softmax.
 */
__device__ __forceinline__ RowExpSum rowExpSum(const float* z, int64_t lo, int64_t hi, float* shared) {
  float m = -INFINITY;
  for (int64_t j = lo + threadIdx.x; j <= hi; j += kThreads) m = fmaxf(m, z[j]);
  m = blockReduce<true>(m, shared);
  float sum = 0;
  for (int64_t j = lo + threadIdx.x; j <= hi; j += kThreads) sum += expf(z[j] - m);
  sum = blockReduce<false>(sum, shared);
  return {m, sum};
}

inline void requireAct(int type, const char* what) {
  if (type != kF32 && type != kBF16) throw NativeError(std::string(what) + ": activations are float32 or bfloat16");
}

}  // namespace common

// A kernel call for the element type of a dtype code: T is float or __nv_bfloat16.
#define DISPATCH(type, what, KERNEL_CALL) \
  do {                                    \
    common::requireAct(type, what);       \
    if ((type) == kF32) {                 \
      using T = float;                    \
      KERNEL_CALL;                        \
    } else {                              \
      using T = __nv_bfloat16;            \
      KERNEL_CALL;                        \
    }                                     \
    LAUNCH_CHECK(what);                   \
  } while (0)

// The same for an output type T and an input type Ti.
#define DISPATCH2(outType, inType, what, KERNEL_CALL) \
  do {                                                \
    common::requireAct(outType, what);                \
    common::requireAct(inType, what);                 \
    if ((outType) == kF32 && (inType) == kF32) {      \
      using T = float;                                \
      using Ti = float;                               \
      KERNEL_CALL;                                    \
    } else if ((outType) == kF32) {                   \
      using T = float;                                \
      using Ti = __nv_bfloat16;                       \
      KERNEL_CALL;                                    \
    } else if ((inType) == kF32) {                    \
      using T = __nv_bfloat16;                        \
      using Ti = float;                               \
      KERNEL_CALL;                                    \
    } else {                                          \
      using T = __nv_bfloat16;                        \
      using Ti = __nv_bfloat16;                       \
      KERNEL_CALL;                                    \
    }                                                 \
    LAUNCH_CHECK(what);                               \
  } while (0)
