// Dequantization: codes × their block's scale, straight into a product's operand in the
// compute precision (float32 or bfloat16), the one kernel for packed bit streams (the weights a
// model keeps packed on the device) and one-byte codes (LoftQ's Q, which is the 8-bit stream).
// The product is rounded to float32 first, as the CPU dequantizes (tensor/host-quantizer.ts).
#include "addon-api.h"
#include "common.cuh"
#include "context.h"

namespace {

using namespace common;

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

/** out[i] = levels[code i] · absmax[i / blockSize] from a little-endian stream of `bits`-bit codes. */
void launchDequantPacked(void* out, int outType, const uint8_t* packed, const float* absmax, const float* levels, int levelCount, int64_t count, int bits,
                         int64_t blockSize, cudaStream_t stream) {
  // Eight codes per thread where they are whole bytes of one absmax block (and the output rows 16-byte aligned).
  if (count % 8 == 0 && blockSize % 8 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0) {
    DISPATCH(outType, "dequantPacked",
             (dequantPacked8Kernel<T><<<gridFor(count / 8), kThreads, 0, stream>>>(static_cast<T*>(out), packed, absmax, levels, levelCount, count / 8, bits, blockSize)));
    return;
  }
  DISPATCH(outType, "dequantPacked",
           (dequantPackedKernel<T><<<gridFor(count), kThreads, 0, stream>>>(static_cast<T*>(out), packed, absmax, levels, levelCount, count, bits, blockSize)));
}

void checkScales(const Buffer* absmax, const Buffer* levels, int64_t count, int64_t blockSize, int64_t levelCount, const char* what) {
  checkBytes(absmax, static_cast<size_t>((count + blockSize - 1) / blockSize) * 4, what);
  checkBytes(levels, static_cast<size_t>(levelCount) * 4, what);
}

}  // namespace

namespace js {

napi_value dequantPacked(napi_env env, const DequantPackedArgs& a) {
  requireRange(a.levelCount, 2, 256, "dequantPacked: levelCount");
  requireRange(a.bits, 1, 8, "dequantPacked: bits");
  requireRange(a.blockSize, 1, INT64_MAX, "dequantPacked: blockSize");
  if (a.levelCount > (int64_t{1} << a.bits)) throw JsError("dequantPacked: more levels than the bits can address");
  checkBytes(a.out, actBytes(a.count, a.outType), "dequantPacked out");
  checkBytes(a.packed, static_cast<size_t>((a.count * a.bits + 7) / 8), "dequantPacked codes");
  checkScales(a.absmax, a.levels, a.count, a.blockSize, a.levelCount, "dequantPacked");
  // Every code must name a level: with fewer levels than 2^bits the codes were checked on upload.
  launchDequantPacked(a.out->ptr, a.outType, at<uint8_t>(a.packed), at<float>(a.absmax), at<float>(a.levels), static_cast<int>(a.levelCount), a.count,
                      static_cast<int>(a.bits), a.blockSize, ctx().stream);
  return undefined(env);
}

/** One-byte codes to float32: the packed kernel with 8-bit codes. */
napi_value dequantize(napi_env env, const DequantizeArgs& a) {
  requireRange(a.levelCount, 2, 256, "dequantize: levelCount");
  requireRange(a.blockSize, 1, INT64_MAX, "dequantize: blockSize");
  checkBytes(a.out, static_cast<size_t>(a.count) * 4, "dequantize out");
  checkBytes(a.codes, static_cast<size_t>(a.count), "dequantize codes");
  checkScales(a.absmax, a.levels, a.count, a.blockSize, a.levelCount, "dequantize");
  if (a.count == 0) return undefined(env);
  launchDequantPacked(a.out->ptr, kF32, at<uint8_t>(a.codes), at<float>(a.absmax), at<float>(a.levels), static_cast<int>(a.levelCount), a.count, 8,
                      a.blockSize, ctx().stream);
  return undefined(env);
}

}  // namespace js
