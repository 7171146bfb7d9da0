// Standard normal values from a counter-based generator: value i depends only on (seed, i).
// Bit-exact twin of src-main/engine/util/counter-normal.ts (the CPU backend's generator): the
// same operations in the same order, so both backends draw the same sketches. Change both
// together; tensor/device.test.ts compares the two streams.
#include "addon-api.h"
#include "common.cuh"
#include "context.h"

namespace {

using namespace common;

__host__ __device__ __forceinline__ uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

__global__ void randomNormalKernel(float* out, int64_t count, uint32_t inner, uint32_t outer) {
  GRID_STRIDE(i, count) {
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

}  // namespace

namespace js {

napi_value randomNormal(napi_env env, const RandomNormalArgs& a) {
  requireRange(a.seed, 0, UINT32_MAX, "randomNormal: seed");
  checkBytes(a.dst, static_cast<size_t>(a.count) * 4, "randomNormal");
  if (a.count == 0) return undefined(env);
  const auto seed = static_cast<uint32_t>(a.seed);
  randomNormalKernel<<<gridFor(a.count, 8192), kThreads, 0, ctx().stream>>>(at<float>(a.dst), a.count, mix32(seed), mix32(seed ^ 0x85ebca6bu));
  LAUNCH_CHECK("randomNormal");
  return undefined(env);
}

}  // namespace js
