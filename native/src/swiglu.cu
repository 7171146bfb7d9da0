// SwiGLU, forward and backward, element by element (gate and up of one type):
//   out = silu(g)·u = (g·σ(g))·u                          (in the CPU graph's order)
//   dgate = da·u·σ(g)·(1 + g·(1 − σ(g))),  dup = da·silu(g)   (float32)
#include "addon-api.h"
#include "common.cuh"
#include "context.h"

namespace {

using namespace common;

template <typename To, typename Ti>
__global__ void swigluKernel(To* out, const Ti* gate, const Ti* up, int64_t count) {
  GRID_STRIDE(i, count) {
    const float g = load(gate, i);
    // The CPU graph's order: (g · sigmoid(g)) · up.
    const float sig = 1.f / (1.f + expf(-g));
    store(out, i, __fmul_rn(__fmul_rn(g, sig), load(up, i)));
  }
}

template <typename Ti>
__global__ void swigluBackwardKernel(float* dgate, float* dup, const float* da, const Ti* gate, const Ti* up, int64_t count) {
  GRID_STRIDE(i, count) {
    const float g = load(gate, i), u = load(up, i);
    const float sig = 1.f / (1.f + expf(-g));
    dup[i] = da[i] * g * sig;
    dgate[i] = da[i] * u * sig * (1.f + g * (1.f - sig));
  }
}

}  // namespace

namespace js {

napi_value swiglu(napi_env env, const SwigluArgs& a) {
  checkBytes(a.out, actBytes(a.count, a.outType), "swiglu out");
  checkBytes(a.gate, actBytes(a.count, a.inType), "swiglu gate");
  checkBytes(a.up, actBytes(a.count, a.inType), "swiglu up");
  DISPATCH2(a.outType, a.inType, "swiglu",
            (swigluKernel<T, Ti><<<gridFor(a.count), kThreads, 0, ctx().stream>>>(static_cast<T*>(a.out->ptr), static_cast<const Ti*>(a.gate->ptr),
                                                                                 static_cast<const Ti*>(a.up->ptr), a.count)));
  return undefined(env);
}

napi_value swigluBackward(napi_env env, const SwigluBackwardArgs& a) {
  for (const Buffer* t : {a.dgate, a.dup, a.da}) checkBytes(t, actBytes(a.count, kF32), "swigluBackward");
  checkBytes(a.gate, actBytes(a.count, a.inType), "swigluBackward gate");
  checkBytes(a.up, actBytes(a.count, a.inType), "swigluBackward up");
  DISPATCH(a.inType, "swigluBackward",
           (swigluBackwardKernel<T><<<gridFor(a.count), kThreads, 0, ctx().stream>>>(at<float>(a.dgate), at<float>(a.dup), at<float>(a.da), static_cast<const T*>(a.gate->ptr),
                                                                                  static_cast<const T*>(a.up->ptr), a.count)));
  return undefined(env);
}

}  // namespace js
