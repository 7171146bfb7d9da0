// The head's cross-entropy over rows of logits [rows, vocab], forward and backward, on the one
// row log-sum-exp of common.cuh:
//   rowNll                nll[r] = logsumexp(z_r) − z_r[target]  (0 where target < 0)
//   crossEntropyBackward  loss[r] = c[r]·nll[r],  dz = c[r]·(softmax(z_r) − onehot(target)) in
//                         dType (rows with c[r] = 0 get zeros)
#include "addon-api.h"
#include "common.cuh"
#include "context.h"

namespace {

using namespace common;

__global__ void __launch_bounds__(kThreads) rowNllKernel(float* nll, const float* logits, const int32_t* targets, int64_t vocab) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const float* z = logits + row * vocab;
  const RowExpSum r = rowExpSum(z, 0, vocab - 1, shared);
  if (threadIdx.x == 0) {
    const int32_t t = targets[row];
    nll[row] = t < 0 ? 0.f : (logf(r.sum) + r.max) - z[t];
  }
}

template <typename Td>
__global__ void __launch_bounds__(kThreads) crossEntropyBackwardKernel(Td* dz, float* loss, const float* logits, const int32_t* targets, const float* c,
                                                                        int64_t vocab) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const float* z = logits + row * vocab;
  const float weight = c[row];
  Td* out = dz + row * vocab;
  if (weight == 0.f) {
    for (int64_t j = threadIdx.x; j < vocab; j += kThreads) store(out, j, 0.f);
    if (threadIdx.x == 0) loss[row] = 0.f;
    return;
  }
  const RowExpSum r = rowExpSum(z, 0, vocab - 1, shared);
  const int32_t t = targets[row];
  const float inv = 1.f / r.sum;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) store(out, j, weight * (expf(z[j] - r.max) * inv - (j == t ? 1.f : 0.f)));
  if (threadIdx.x == 0) loss[row] = weight * ((logf(r.sum) + r.max) - z[t]);
}

}  // namespace

namespace js {

napi_value rowNll(napi_env env, const RowNllArgs& a) {
  requireRange(a.vocab, 1, INT64_MAX, "rowNll: vocab");
  const int64_t rows = a.rows, vocab = a.vocab;
  checkBytes(a.nll, actBytes(rows, kF32), "rowNll out");
  checkBytes(a.logits, actBytes(rows * vocab, kF32), "rowNll logits");
  checkBytes(a.targets, static_cast<size_t>(rows) * 4, "rowNll targets");
  if (rows == 0) return undefined(env);
  rowNllKernel<<<static_cast<unsigned>(rows), kThreads, 0, ctx().stream>>>(at<float>(a.nll), at<float>(a.logits), at<int32_t>(a.targets), vocab);
  LAUNCH_CHECK("rowNll");
  return undefined(env);
}

napi_value crossEntropyBackward(napi_env env, const CrossEntropyBackwardArgs& a) {
  requireRange(a.vocab, 1, INT64_MAX, "crossEntropyBackward: vocab");
  const int64_t rows = a.rows, vocab = a.vocab;
  checkBytes(a.dlogits, actBytes(rows * vocab, a.dType), "crossEntropyBackward out");
  checkBytes(a.logits, actBytes(rows * vocab, kF32), "crossEntropyBackward logits");
  checkBytes(a.loss, actBytes(rows, kF32), "crossEntropyBackward loss");
  checkBytes(a.targets, static_cast<size_t>(rows) * 4, "crossEntropyBackward targets");
  checkBytes(a.c, actBytes(rows, kF32), "crossEntropyBackward weights");
  if (rows == 0) return undefined(env);
  DISPATCH(a.dType, "crossEntropyBackward",
           (crossEntropyBackwardKernel<T><<<static_cast<unsigned>(rows), kThreads, 0, ctx().stream>>>(static_cast<T*>(a.dlogits->ptr), at<float>(a.loss), at<float>(a.logits),
                                                                                                  at<int32_t>(a.targets), at<float>(a.c), vocab)));
  return undefined(env);
}

}  // namespace js
