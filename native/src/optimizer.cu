// AdamW on the device (optimizer.h). The float64 intrinsics keep nvcc from contracting a
// multiply and an add into one fused operation, which would round differently from the
// host's JavaScript arithmetic; so a GPU step equals train/adamw.ts's step exactly.
#include "check.h"
#include "optimizer.h"

#include <algorithm>

namespace {

constexpr int kThreads = 256;

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

void launchAdamW(float* p, const float* g, float* m, float* v, int64_t count, const AdamWConstants& c, cudaStream_t stream) {
  if (count == 0) return;
  const int64_t blocks = std::min<int64_t>((count + kThreads - 1) / kThreads, 65535 * 8);
  adamwKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, g, m, v, count, c);
  LAUNCH_CHECK("adamw");
}
