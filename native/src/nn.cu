#include "nn.h"

#include <cuda_bf16.h>

#include <algorithm>

#include "check.h"
#include "kernels.cuh"
#include "nn-common.cuh"

namespace {

using namespace nn_common;

template <typename T>
__global__ void embedKernel(float* out, const T* table, const int32_t* ids, int64_t rows, int64_t hidden) {
  GRID_STRIDE(i, rows * hidden) {
    const int64_t r = i / hidden, c = i % hidden;
    out[i] = load(table, static_cast<int64_t>(ids[r]) * hidden + c);
  }
}

template <typename To>
__global__ void __launch_bounds__(kThreads) rmsNormKernel(To* out, const float* x, const float* w, int64_t hidden, float eps) {
  __shared__ float shared[32];
  const float* row = x + blockIdx.x * hidden;
  float s = 0;
  for (int64_t c = threadIdx.x; c < hidden; c += kThreads) s += row[c] * row[c];
  const float meanSq = blockReduce<false>(s, shared) / static_cast<float>(hidden);
  const float inv = 1.f / sqrtf(meanSq + eps);
  for (int64_t c = threadIdx.x; c < hidden; c += kThreads) store(out, blockIdx.x * hidden + c, (row[c] * inv) * w[c]);
}

template <typename To>
__global__ void __launch_bounds__(kThreads) dequantPackedKernel(To* out, const uint8_t* packed, const float* absmax, const float* levels, int levelCount,
                                                                 int64_t count, int bits, int64_t blockSize) {
  __shared__ float lv[256];
  for (int i = threadIdx.x; i < levelCount; i += kThreads) lv[i] = levels[i];
  __syncthreads();
  const uint32_t mask = (1u << bits) - 1u;
  GRID_STRIDE(i, count) {
    const int64_t bit = i * bits;
    const int64_t byte = bit >> 3;
    const int shift = static_cast<int>(bit & 7);
    uint32_t v = packed[byte];
    if (shift + bits > 8) v |= static_cast<uint32_t>(packed[byte + 1]) << 8;
    const uint32_t code = (v >> shift) & mask;
    // The product rounded to float32 first, as the CPU dequantizes (tensor/host-quantizer.ts).
    store(out, i, __fmul_rn(lv[code], absmax[i / blockSize]));
  }
}

/** Eight float32 values to eight consecutive outputs in one (float32: two) 16-byte stores. */
__device__ __forceinline__ void store8(float* p, int64_t i, const float (&v)[8]) {
  *reinterpret_cast<float4*>(p + i) = make_float4(v[0], v[1], v[2], v[3]);
  *reinterpret_cast<float4*>(p + i + 4) = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store8(__nv_bfloat16* p, int64_t i, const float (&v)[8]) {
  uint4 w;
  uint32_t* u = reinterpret_cast<uint32_t*>(&w);
#pragma unroll
  for (int k = 0; k < 4; k++) {
    __nv_bfloat162 pair = __floats2bfloat162_rn(v[2 * k], v[2 * k + 1]);
    u[k] = *reinterpret_cast<uint32_t*>(&pair);
  }
  *reinterpret_cast<uint4*>(p + i) = w;
}

/**
 * dequantPackedKernel eight codes per thread, where the block size is a multiple of 8: the
 * eight codes fill exactly `bits` whole bytes, share one absmax, and leave in one store.
 */
template <typename To>
__global__ void __launch_bounds__(kThreads) dequantPacked8Kernel(To* out, const uint8_t* packed, const float* absmax, const float* levels, int levelCount,
                                                                  int64_t groups, int bits, int64_t blockSize) {
  __shared__ float lv[256];
  for (int i = threadIdx.x; i < levelCount; i += kThreads) lv[i] = levels[i];
  __syncthreads();
  const uint32_t mask = (1u << bits) - 1u;
  GRID_STRIDE(j, groups) {
    const uint8_t* src = packed + j * bits;
    uint64_t word = 0;
    for (int b = 0; b < bits; b++) word |= static_cast<uint64_t>(src[b]) << (8 * b);
    const float scale = absmax[(j * 8) / blockSize];
    float v[8];
#pragma unroll
    for (int e = 0; e < 8; e++) v[e] = __fmul_rn(lv[static_cast<uint32_t>(word >> (e * bits)) & mask], scale);
    store8(out, j * 8, v);
  }
}

template <typename To>
__global__ void castKernel(To* out, const float* in, int64_t count) {
  GRID_STRIDE(i, count) store(out, i, in[i]);
}

template <typename To, typename Ti>
__global__ void ropeHeadsKernel(To* out, RopeArgs a) {
  const Ti* in = static_cast<const Ti*>(a.in);
  const int64_t total = a.batch * a.seq * a.heads * a.headDim;
  const int64_t half = a.headDim / 2;
  GRID_STRIDE(i, total) {
    const int64_t d = i % a.headDim;
    const int64_t h = (i / a.headDim) % a.heads;
    const int64_t s = (i / (a.headDim * a.heads)) % a.seq;
    const int64_t b = i / (a.headDim * a.heads * a.seq);
    const Ti* row = in + (b * a.seq + s) * a.inStride + a.colOffset + h * a.headDim;
    float y = load(row, d);
    if (a.cos) {
      const float partner = d < half ? -load(row, d + half) : load(row, d - half);
      y = __fadd_rn(__fmul_rn(y, a.cos[s * a.headDim + d]), __fmul_rn(partner, a.sin[s * a.headDim + d]));
    }
    const int64_t outHeads = a.heads * a.repeat;
    for (int64_t r = 0; r < a.repeat; r++) {
      const int64_t head = h * a.repeat + r;
      store(out, ((b * outHeads + head) * a.seq + s) * a.headDim + d, y);
    }
  }
}

/**
 * ropeHeadsKernel one sequence row per block, each thread a pair (d, d + half) of one head:
 * the rotation's two partners are read once, and indices stay 32-bit within a row.
 */
template <typename To, typename Ti>
__global__ void __launch_bounds__(kThreads) ropeHeadsRowKernel(To* out, RopeArgs a) {
  const int64_t row = blockIdx.x;  // b·seq + s
  const int64_t b = row / a.seq, s = row % a.seq;
  const int half = static_cast<int>(a.headDim / 2);
  const int pairs = static_cast<int>(a.heads) * half;
  const Ti* in = static_cast<const Ti*>(a.in) + row * a.inStride + a.colOffset;
  const int64_t outHeads = a.heads * a.repeat;
  for (int p = threadIdx.x; p < pairs; p += kThreads) {
    const int h = p / half, d = p % half;
    const Ti* x = in + static_cast<int64_t>(h) * a.headDim;
    const float x1 = load(x, d), x2 = load(x, d + half);
    float y1 = x1, y2 = x2;
    if (a.cos) {
      const float* c = a.cos + s * a.headDim;
      const float* sn = a.sin + s * a.headDim;
      // ropeHeadsKernel's operations: x·cos + rotate_half(x)·sin.
      y1 = __fadd_rn(__fmul_rn(x1, c[d]), __fmul_rn(-x2, sn[d]));
      y2 = __fadd_rn(__fmul_rn(x2, c[d + half]), __fmul_rn(x1, sn[d + half]));
    }
    for (int64_t r = 0; r < a.repeat; r++) {
      To* o = out + ((b * outHeads + h * a.repeat + r) * a.seq + s) * a.headDim;
      store(o, d, y1);
      store(o, d + half, y2);
    }
  }
}

template <typename Tp>
__global__ void __launch_bounds__(kThreads) causalSoftmaxKernel(Tp* p, const float* scores, int64_t rows, int64_t keys, int64_t q0, int64_t window) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;  // over batch·rows
  const int64_t q = q0 + row % rows;
  const int64_t lo = window > 0 ? (q - window + 1 > 0 ? q - window + 1 : 0) : 0;
  const int64_t hi = q < keys - 1 ? q : keys - 1;
  const float* s = scores + row * keys;
  float m = -INFINITY;
  for (int64_t j = lo + threadIdx.x; j <= hi; j += kThreads) m = fmaxf(m, s[j]);
  m = blockReduce<true>(m, shared);
  float sum = 0;
  for (int64_t j = lo + threadIdx.x; j <= hi; j += kThreads) sum += expf(s[j] - m);
  sum = blockReduce<false>(sum, shared);
  const float inv = 1.f / sum;
  for (int64_t j = threadIdx.x; j < keys; j += kThreads) store(p, row * keys + j, (j >= lo && j <= hi) ? expf(s[j] - m) * inv : 0.f);
}

template <typename To>
__global__ void mergeHeadsKernel(To* out, const float* o, int64_t batch, int64_t heads, int64_t seq, int64_t headDim) {
  GRID_STRIDE(i, batch * heads * seq * headDim) {
    const int64_t d = i % headDim;
    const int64_t h = (i / headDim) % heads;
    const int64_t s = (i / (headDim * heads)) % seq;
    const int64_t b = i / (headDim * heads * seq);
    store(out, i, o[((b * heads + h) * seq + s) * headDim + d]);
  }
}

template <typename To, typename Ti>
__global__ void swigluKernel(To* out, const Ti* gate, const Ti* up, int64_t count) {
  GRID_STRIDE(i, count) {
    const float g = load(gate, i);
    // The CPU graph's order: (g · sigmoid(g)) · up.
    const float sig = 1.f / (1.f + expf(-g));
    store(out, i, __fmul_rn(__fmul_rn(g, sig), load(up, i)));
  }
}

__global__ void addBiasKernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  GRID_STRIDE(i, rows * cols) y[i] += bias[i % cols];
}

__global__ void addIntoKernel(float* y, const float* x, int64_t count) {
  GRID_STRIDE(i, count) y[i] += x[i];
}

__global__ void __launch_bounds__(kThreads) rowNllKernel(float* nll, const float* logits, const int32_t* targets, int64_t vocab) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const float* z = logits + row * vocab;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) m = fmaxf(m, z[j]);
  m = blockReduce<true>(m, shared);
  float sum = 0;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) sum += expf(z[j] - m);
  sum = blockReduce<false>(sum, shared);
  if (threadIdx.x == 0) {
    const int32_t t = targets[row];
    nll[row] = t < 0 ? 0.f : (logf(sum) + m) - z[t];
  }
}

void requireAct(int type, const char* what) {
  if (type != kF32 && type != kBF16) throw NativeError(std::string(what) + ": activations are float32 or bfloat16");
}

void checkLaunch() { CUDA_CHECK(cudaGetLastError()); }

}  // namespace

#define DISPATCH(type, what, KERNEL_CALL)                            \
  do {                                                               \
    requireAct(type, what);                                          \
    if ((type) == kF32) {                                            \
      using T = float;                                               \
      KERNEL_CALL;                                                   \
    } else {                                                         \
      using T = __nv_bfloat16;                                       \
      KERNEL_CALL;                                                   \
    }                                                                \
    checkLaunch();                                                   \
  } while (0)

#define DISPATCH2(outType, inType, what, KERNEL_CALL)                 \
  do {                                                                \
    requireAct(outType, what);                                        \
    requireAct(inType, what);                                         \
    if ((outType) == kF32 && (inType) == kF32) {                      \
      using T = float;                                                \
      using Ti = float;                                               \
      KERNEL_CALL;                                                    \
    } else if ((outType) == kF32) {                                   \
      using T = float;                                                \
      using Ti = __nv_bfloat16;                                       \
      KERNEL_CALL;                                                    \
    } else if ((inType) == kF32) {                                    \
      using T = __nv_bfloat16;                                        \
      using Ti = float;                                               \
      KERNEL_CALL;                                                    \
    } else {                                                          \
      using T = __nv_bfloat16;                                        \
      using Ti = __nv_bfloat16;                                       \
      KERNEL_CALL;                                                    \
    }                                                                 \
    checkLaunch();                                                    \
  } while (0)

void launchEmbedRows(float* out, const void* table, int tableType, const int32_t* ids, int64_t rows, int64_t hidden, cudaStream_t stream) {
  DISPATCH(tableType, "embedRows", (embedKernel<T><<<gridFor(rows * hidden), kThreads, 0, stream>>>(out, static_cast<const T*>(table), ids, rows, hidden)));
}

void launchRmsNorm(void* out, int outType, const float* x, const float* w, int64_t rows, int64_t hidden, float eps, cudaStream_t stream) {
  if (rows == 0) return;
  DISPATCH(outType, "rmsNorm", (rmsNormKernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(static_cast<T*>(out), x, w, hidden, eps)));
}

void launchDequantPacked(void* out, int outType, const uint8_t* packed, const float* absmax, const float* levels, int levelCount, int64_t count,
                         int bits, int64_t blockSize, cudaStream_t stream) {
  // Eight codes per thread where they are whole bytes of one absmax block (and the output rows 16-byte aligned).
  if (count % 8 == 0 && blockSize % 8 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0) {
    DISPATCH(outType, "dequantPacked",
             (dequantPacked8Kernel<T><<<gridFor(count / 8), kThreads, 0, stream>>>(static_cast<T*>(out), packed, absmax, levels, levelCount, count / 8, bits, blockSize)));
    return;
  }
  DISPATCH(outType, "dequantPacked",
           (dequantPackedKernel<T><<<gridFor(count), kThreads, 0, stream>>>(static_cast<T*>(out), packed, absmax, levels, levelCount, count, bits, blockSize)));
}

void launchCast(void* out, int outType, const float* in, int64_t count, cudaStream_t stream) {
  DISPATCH(outType, "cast", (castKernel<T><<<gridFor(count), kThreads, 0, stream>>>(static_cast<T*>(out), in, count)));
}

void launchRopeHeads(void* out, int outType, const RopeArgs& a, cudaStream_t stream) {
  const int64_t total = a.batch * a.seq * a.heads * a.headDim;
  if (total == 0) return;
  if (a.headDim % 2 == 0) {
    DISPATCH2(outType, a.inType, "ropeHeads", (ropeHeadsRowKernel<T, Ti><<<static_cast<unsigned>(a.batch * a.seq), kThreads, 0, stream>>>(static_cast<T*>(out), a)));
    return;
  }
  DISPATCH2(outType, a.inType, "ropeHeads", (ropeHeadsKernel<T, Ti><<<gridFor(total), kThreads, 0, stream>>>(static_cast<T*>(out), a)));
}

void launchCausalSoftmax(void* p, int pType, const float* scores, int64_t batch, int64_t rows, int64_t keys, int64_t q0, int64_t window,
                         cudaStream_t stream) {
  if (batch * rows == 0) return;
  DISPATCH(pType, "causalSoftmax",
           (causalSoftmaxKernel<T><<<static_cast<unsigned>(batch * rows), kThreads, 0, stream>>>(static_cast<T*>(p), scores, rows, keys, q0, window)));
}

void launchMergeHeads(void* out, int outType, const float* o, int64_t batch, int64_t heads, int64_t seq, int64_t headDim, cudaStream_t stream) {
  DISPATCH(outType, "mergeHeads",
           (mergeHeadsKernel<T><<<gridFor(batch * heads * seq * headDim), kThreads, 0, stream>>>(static_cast<T*>(out), o, batch, heads, seq, headDim)));
}

void launchSwiglu(void* out, int outType, const void* gate, const void* up, int inType, int64_t count, cudaStream_t stream) {
  DISPATCH2(outType, inType, "swiglu",
            (swigluKernel<T, Ti><<<gridFor(count), kThreads, 0, stream>>>(static_cast<T*>(out), static_cast<const Ti*>(gate), static_cast<const Ti*>(up), count)));
}

void launchAddBias(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  addBiasKernel<<<gridFor(rows * cols), kThreads, 0, stream>>>(y, bias, rows, cols);
  checkLaunch();
}

void launchAddInto(float* y, const float* x, int64_t count, cudaStream_t stream) {
  addIntoKernel<<<gridFor(count), kThreads, 0, stream>>>(y, x, count);
  checkLaunch();
}

void launchRowNll(float* nll, const float* logits, const int32_t* targets, int64_t rows, int64_t vocab, cudaStream_t stream) {
  if (rows == 0) return;
  rowNllKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(nll, logits, targets, vocab);
  checkLaunch();
}
