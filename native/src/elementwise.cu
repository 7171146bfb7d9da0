// Element-wise float32 sums of the residual stream: y += x, and a bias added to every row.
#include "addon-api.h"
#include "common.cuh"
#include "context.h"

namespace {

using namespace common;

__global__ void addBiasKernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  GRID_STRIDE(i, rows * cols) y[i] += bias[i % cols];
}

__global__ void addIntoKernel(float* y, const float* x, int64_t count) {
  GRID_STRIDE(i, count) y[i] += x[i];
}

}  // namespace

namespace js {

napi_value addBias(napi_env env, const AddBiasArgs& a) {
  checkBytes(a.y, actBytes(a.rows * a.cols, kF32), "addBias y");
  checkBytes(a.bias, actBytes(a.cols, kF32), "addBias bias");
  addBiasKernel<<<gridFor(a.rows * a.cols), kThreads, 0, ctx().stream>>>(at<float>(a.y), at<float>(a.bias), a.rows, a.cols);
  LAUNCH_CHECK("addBias");
  return undefined(env);
}

napi_value addInto(napi_env env, const AddIntoArgs& a) {
  checkBytes(a.y, actBytes(a.count, kF32), "addInto y");
  checkBytes(a.x, actBytes(a.count, kF32), "addInto x");
  addIntoKernel<<<gridFor(a.count), kThreads, 0, ctx().stream>>>(at<float>(a.y), at<float>(a.x), a.count);
  LAUNCH_CHECK("addInto");
  return undefined(env);
}

}  // namespace js
