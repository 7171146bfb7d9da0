// Element-type conversions: stored values to float32 (convert, and the file reads), float32 to
// the compute precision (cast: round to nearest even for bfloat16), float32 to float64.
#include "addon-api.h"
#include "common.cuh"
#include "context.h"
#include "convert.cuh"

#include <cuda_fp16.h>

namespace {

using namespace common;

__global__ void convertKernel(float* out, const void* in, int dtype, int64_t count) {
  GRID_STRIDE(i, count) {
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

template <typename To>
__global__ void castKernel(To* out, const float* in, int64_t count) {
  GRID_STRIDE(i, count) store(out, i, in[i]);
}

__global__ void toDoubleKernel(double* out, const float* in, int64_t count) {
  GRID_STRIDE(i, count) out[i] = in[i];
}

}  // namespace

void launchConvert(float* out, const void* in, int dtype, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  convertKernel<<<gridFor(count, 8192), kThreads, 0, stream>>>(out, in, dtype, count);
  LAUNCH_CHECK("convert");
}

void launchToDouble(double* out, const float* in, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  toDoubleKernel<<<gridFor(count, 8192), kThreads, 0, stream>>>(out, in, count);
  LAUNCH_CHECK("toDouble");
}

namespace js {

napi_value convert(napi_env env, const ConvertArgs& a) {
  checkBytes(a.dst, static_cast<size_t>(a.count) * 4, "convert");
  checkBytes(a.src, static_cast<size_t>(a.count) * dtypeBytes(a.dtype), "convert");
  launchConvert(at<float>(a.dst), a.src->ptr, a.dtype, a.count, ctx().stream);
  return undefined(env);
}

napi_value cast(napi_env env, const CastArgs& a) {
  checkBytes(a.out, actBytes(a.count, a.outType), "cast out");
  checkBytes(a.input, actBytes(a.count, kF32), "cast in");
  DISPATCH(a.outType, "cast", (castKernel<T><<<gridFor(a.count), kThreads, 0, ctx().stream>>>(static_cast<T*>(a.out->ptr), at<float>(a.input), a.count)));
  return undefined(env);
}

}  // namespace js
