// RMSNorm, forward and backward, one block per row of x [rows, hidden]:
//   out = (x · ι) · w,  ι = 1/√(mean(x²) + eps)          (float32, then rounded to outType)
//   dx += ι·g − x·ι³·mean(g ⊙ x),  g = dn ⊙ w            (float32)
#include "addon-api.h"
#include "common.cuh"
#include "context.h"

namespace {

using namespace common;

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

__global__ void __launch_bounds__(kThreads) rmsNormBackwardKernel(float* dx, const float* dn, const float* x, const float* w, int64_t hidden, float eps) {
  __shared__ float shared[32];
  const float* xr = x + blockIdx.x * hidden;
  const float* dr = dn + blockIdx.x * hidden;
  float ss = 0, gx = 0;
  for (int64_t c = threadIdx.x; c < hidden; c += kThreads) {
    ss += xr[c] * xr[c];
    gx += dr[c] * w[c] * xr[c];
  }
  ss = blockReduce<false>(ss, shared);
  gx = blockReduce<false>(gx, shared);
  const float inv = 1.f / sqrtf(ss / static_cast<float>(hidden) + eps);
  const float k = inv * inv * inv * gx / static_cast<float>(hidden);
  for (int64_t c = threadIdx.x; c < hidden; c += kThreads) dx[blockIdx.x * hidden + c] += inv * dr[c] * w[c] - xr[c] * k;
}

}  // namespace

namespace js {

napi_value rmsNorm(napi_env env, const RmsNormArgs& a) {
  requireRange(a.hidden, 1, INT64_MAX, "rmsNorm: hidden");
  const int64_t rows = a.rows, hidden = a.hidden;
  checkBytes(a.out, actBytes(rows * hidden, a.outType), "rmsNorm out");
  checkBytes(a.x, actBytes(rows * hidden, kF32), "rmsNorm x");
  checkBytes(a.w, actBytes(hidden, kF32), "rmsNorm weight");
  if (rows == 0) return undefined(env);
  DISPATCH(a.outType, "rmsNorm",
           (rmsNormKernel<T><<<static_cast<unsigned>(rows), kThreads, 0, ctx().stream>>>(static_cast<T*>(a.out->ptr), at<float>(a.x), at<float>(a.w), hidden,
                                                                                         static_cast<float>(a.eps))));
  return undefined(env);
}

napi_value rmsNormBackward(napi_env env, const RmsNormBackwardArgs& a) {
  requireRange(a.hidden, 1, INT64_MAX, "rmsNormBackward: hidden");
  const int64_t rows = a.rows, hidden = a.hidden;
  for (const Buffer* t : {a.dx, a.dn, a.x}) checkBytes(t, actBytes(rows * hidden, kF32), "rmsNormBackward");
  checkBytes(a.w, actBytes(hidden, kF32), "rmsNormBackward weight");
  if (rows == 0) return undefined(env);
  rmsNormBackwardKernel<<<static_cast<unsigned>(rows), kThreads, 0, ctx().stream>>>(at<float>(a.dx), at<float>(a.dn), at<float>(a.x), at<float>(a.w), hidden,
                                                                                    static_cast<float>(a.eps));
  LAUNCH_CHECK("rmsNormBackward");
  return undefined(env);
}

}  // namespace js
