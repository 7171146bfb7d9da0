// The optimizer's kernel: AdamW over a flat block of float32 parameters on the device,
// train/adamw.ts's update element by element and bit for bit — every operation in float64
// with round-to-nearest and no fused multiply-adds (the float64 intrinsics keep nvcc from
// contracting a multiply and an add, which would round differently from the host's
// JavaScript arithmetic), rounded to float32 where the host stores.
#include <algorithm>

#include "addon-api.h"
#include "check.h"
#include "context.h"

namespace {

constexpr int kThreads = 256;

/** Per-step constants of the update, computed on the host as train/adamw.ts computes them. */
struct AdamWConstants {
  double beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps;
  double stepSize;  // lr / (1 − β1^t)
  double bc2Sqrt;   // √(1 − β2^t)
  double shrink;    // 1 − lr·wd (1: no decay)
  double divisor;   // gradients are sums of `divisor` micro-batches: g = float(sum / divisor)
  double clip;      // then g = float(g · clip) where clip ≠ 1
};

__global__ void adamwKernel(float* p, const float* g, float* m, float* v, int64_t count, AdamWConstants c) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float gi = static_cast<float>(__ddiv_rn(static_cast<double>(g[i]), c.divisor));
    if (c.clip != 1.0) gi = static_cast<float>(__dmul_rn(static_cast<double>(gi), c.clip));
    const double gd = gi;
    const float mi = static_cast<float>(__dadd_rn(__dmul_rn(c.beta1, m[i]), __dmul_rn(c.oneMinusBeta1, gd)));
    const float vi = static_cast<float>(__dadd_rn(__dmul_rn(c.beta2, v[i]), __dmul_rn(__dmul_rn(c.oneMinusBeta2, gd), gd)));
    m[i] = mi;
    v[i] = vi;
    const double denom = __dadd_rn(__ddiv_rn(__dsqrt_rn(static_cast<double>(vi)), c.bc2Sqrt), c.eps);
    p[i] = static_cast<float>(__dsub_rn(__dmul_rn(static_cast<double>(p[i]), c.shrink), __ddiv_rn(__dmul_rn(c.stepSize, static_cast<double>(mi)), denom)));
  }
}

}  // namespace

namespace js {

/** Over elements [offset, offset + count) of float32 p, g, m, v. */
napi_value adamw(napi_env env, const AdamwArgs& a) {
  for (const Buffer* b : {a.p, a.g, a.m, a.v}) checkBytes(b, static_cast<size_t>(a.offset + a.count) * 4, "adamw");
  const AdamWConstants c{a.beta1, a.oneMinusBeta1, a.beta2, a.oneMinusBeta2, a.eps, a.stepSize, a.bc2Sqrt, a.shrink, a.divisor, a.clip};
  if (!(c.divisor >= 1)) throw JsError("adamw: the divisor must be at least 1");
  if (a.count == 0) return undefined(env);
  const int64_t blocks = std::min<int64_t>((a.count + kThreads - 1) / kThreads, 65535 * 8);
  adamwKernel<<<static_cast<unsigned>(blocks), kThreads, 0, ctx().stream>>>(at<float>(a.p) + a.offset, at<float>(a.g) + a.offset, at<float>(a.m) + a.offset,
                                                                             at<float>(a.v) + a.offset, a.count, c);
  LAUNCH_CHECK("adamw");
  return undefined(env);
}

}  // namespace js
