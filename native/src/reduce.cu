// Whole-buffer reductions: Σ x² in float64 (norms, the gradient norm) and the first NaN or ±∞
// (weights checked on upload), and the fixed-order second stage of every float64 sum.
#include "addon-api.h"
#include "common.cuh"
#include "context.h"
#include "reduce.cuh"

namespace {

using namespace common;

/** Σ x² needs this many partial sums (one per block of the first stage). */
constexpr int kReduceBlocks = 1024;

__global__ void sumSquaresKernel(double* partials, const float* x, int64_t count) {
  __shared__ double shared[kWarps];
  double s = 0;
  GRID_STRIDE(i, count) {
    double v = x[i];
    s += v * v;
  }
  double total = blockSum(s, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void reducePartialsKernel(double* out, const double* partials, int blocks, int stride) {
  __shared__ double shared[kWarps];
  int k = blockIdx.x;
  double s = 0;
  for (int b = threadIdx.x; b < blocks; b += blockDim.x) s += partials[static_cast<int64_t>(b) * stride + k];
  double total = blockSum(s, shared);
  if (threadIdx.x == 0) out[k] = total;
}

__global__ void findNonFiniteKernel(unsigned long long* out, const float* x, int64_t count) {
  GRID_STRIDE(i, count) {
    if (!isfinite(x[i])) atomicMin(out, static_cast<unsigned long long>(i));
  }
}

}  // namespace

void launchReducePartials(double* out, const double* partials, int blocks, int stride, int outputs, cudaStream_t stream) {
  reducePartialsKernel<<<outputs, kThreads, 0, stream>>>(out, partials, blocks, stride);
  LAUNCH_CHECK("reducePartials");
}

namespace js {

napi_value sumSquares(napi_env env, const SumSquaresArgs& a) {
  checkBytes(a.buf, static_cast<size_t>(a.count) * 4, "sumSquares");
  Temp partials(kReduceBlocks * sizeof(double));
  Temp out(sizeof(double));
  cudaStream_t stream = ctx().stream;
  sumSquaresKernel<<<kReduceBlocks, kThreads, 0, stream>>>(partials.as<double>(), at<float>(a.buf), a.count);
  LAUNCH_CHECK("sumSquares");
  launchReducePartials(out.as<double>(), partials.as<double>(), kReduceBlocks, 1, 1, stream);
  return deliver(env, out.ptr, sizeof(double), ResultKind::Number);
}

napi_value findNonFinite(napi_env env, const FindNonFiniteArgs& a) {
  checkBytes(a.buf, static_cast<size_t>(a.count) * 4, "findNonFinite");
  Temp out(sizeof(unsigned long long));
  CUDA_CHECK(cudaMemsetAsync(out.ptr, 0xff, sizeof(unsigned long long), ctx().stream));
  if (a.count > 0) {
    findNonFiniteKernel<<<gridFor(a.count, 8192), kThreads, 0, ctx().stream>>>(out.as<unsigned long long>(), at<float>(a.buf), a.count);
    LAUNCH_CHECK("findNonFinite");
  }
  return deliver(env, out.ptr, sizeof(unsigned long long), ResultKind::NonFinite);
}

}  // namespace js
