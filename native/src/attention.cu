// The blocked attention path's own kernels (its products go to cuBLAS, blas.cpp): the causal
// softmax of a block of scores, and its backward. Forward and backward of one op, side by side.
//   P = softmax over the keys each query sees (j ≤ q, and j > q − window with a window)
//   dS = P ⊙ (dP − rowsum(P ⊙ dP))
#include "addon-api.h"
#include "common.cuh"
#include "context.h"

namespace {

using namespace common;

template <typename Tp>
__global__ void __launch_bounds__(kThreads) causalSoftmaxKernel(Tp* p, const float* scores, int64_t rows, int64_t keys, int64_t q0, int64_t window) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;  // over batch·rows
  const int64_t q = q0 + row % rows;
  const int64_t lo = window > 0 ? (q - window + 1 > 0 ? q - window + 1 : 0) : 0;
  const int64_t hi = q < keys - 1 ? q : keys - 1;
  const float* s = scores + row * keys;
  const RowExpSum r = rowExpSum(s, lo, hi, shared);
  const float inv = 1.f / r.sum;
  for (int64_t j = threadIdx.x; j < keys; j += kThreads) store(p, row * keys + j, (j >= lo && j <= hi) ? expf(s[j] - r.max) * inv : 0.f);
}

template <typename Td>
__global__ void __launch_bounds__(kThreads) softmaxBackwardKernel(Td* ds, const float* p, const float* dp, int64_t keys) {
  __shared__ float shared[32];
  const float* pr = p + blockIdx.x * keys;
  const float* dr = dp + blockIdx.x * keys;
  float dot = 0;
  for (int64_t j = threadIdx.x; j < keys; j += kThreads) dot += pr[j] * dr[j];
  dot = blockReduce<false>(dot, shared);
  for (int64_t j = threadIdx.x; j < keys; j += kThreads) store(ds, blockIdx.x * keys + j, pr[j] * (dr[j] - dot));
}

}  // namespace

namespace js {

/**
 * Causal softmax of a block of attention scores S [batch, rows, keys] (already scaled) for
 * queries at positions q0 … q0 + rows − 1: key j counts for query q when j ≤ q and (window = 0
 * or j > q − window); P = softmax over those, 0 elsewhere.
 */
napi_value causalSoftmax(napi_env env, const CausalSoftmaxArgs& a) {
  requireRange(a.keys, 1, INT64_MAX, "causalSoftmax: keys");
  const int64_t batch = a.batch, rows = a.rows, keys = a.keys;
  if (a.q0 + rows > keys) throw JsError("causalSoftmax: every query needs its own key (q0 + rows ≤ keys)");
  checkBytes(a.p, actBytes(batch * rows * keys, a.pType), "causalSoftmax out");
  checkBytes(a.scores, actBytes(batch * rows * keys, kF32), "causalSoftmax scores");
  if (batch * rows == 0) return undefined(env);
  DISPATCH(a.pType, "causalSoftmax",
           (causalSoftmaxKernel<T><<<static_cast<unsigned>(batch * rows), kThreads, 0, ctx().stream>>>(static_cast<T*>(a.p->ptr), at<float>(a.scores), rows, keys, a.q0,
                                                                                                   a.window)));
  return undefined(env);
}

napi_value softmaxBackward(napi_env env, const SoftmaxBackwardArgs& a) {
  requireRange(a.keys, 1, INT64_MAX, "softmaxBackward: keys");
  const int64_t rows = a.rows, keys = a.keys;
  checkBytes(a.ds, actBytes(rows * keys, a.dsType), "softmaxBackward out");
  checkBytes(a.p, actBytes(rows * keys, kF32), "softmaxBackward p");
  checkBytes(a.dp, actBytes(rows * keys, kF32), "softmaxBackward dp");
  if (rows == 0) return undefined(env);
  DISPATCH(a.dsType, "softmaxBackward",
           (softmaxBackwardKernel<T><<<static_cast<unsigned>(rows), kThreads, 0, ctx().stream>>>(static_cast<T*>(a.ds->ptr), at<float>(a.p), at<float>(a.dp), keys)));
  return undefined(env);
}

}  // namespace js
