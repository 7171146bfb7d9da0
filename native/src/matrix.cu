// Float32 matrix layout ops of the low-rank solvers: a transpose through shared-memory tiles,
// and columns scaled by host factors.
#include "addon-api.h"
#include "common.cuh"
#include "context.h"

namespace {

using namespace common;

__global__ void scaleColumnsKernel(float* out, const float* in, const float* f, int64_t rows, int64_t cols) {
  GRID_STRIDE(i, rows * cols) out[i] = in[i] * f[i % cols];
}

__global__ void transposeKernel(float* out, const float* in, int64_t rows, int64_t cols) {
  __shared__ float tile[32][33];
  int64_t c0 = static_cast<int64_t>(blockIdx.x) * 32;
  int64_t r0 = static_cast<int64_t>(blockIdx.y) * 32;
  for (int j = threadIdx.y; j < 32; j += 8) {
    int64_t r = r0 + j, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[j][threadIdx.x] = in[r * cols + c];
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    int64_t outRow = c0 + j, outCol = r0 + threadIdx.x;
    if (outRow < cols && outCol < rows) out[outRow * rows + outCol] = tile[threadIdx.x][j];
  }
}

}  // namespace

namespace js {

napi_value scaleColumns(napi_env env, const ScaleColumnsArgs& a) {
  const int64_t rows = a.rows, cols = a.cols;
  if (a.factors.size != static_cast<size_t>(cols) * 4) throw JsError("scaleColumns: one float32 factor per column needed");
  checkBytes(a.dst, static_cast<size_t>(rows * cols) * 4, "scaleColumns");
  checkBytes(a.src, static_cast<size_t>(rows * cols) * 4, "scaleColumns");
  Temp factors(a.factors.size ? a.factors.size : 4);
  uploadHost(factors.ptr, a.factors.data, a.factors.size);
  if (rows * cols > 0) {
    scaleColumnsKernel<<<gridFor(rows * cols, 8192), kThreads, 0, ctx().stream>>>(at<float>(a.dst), at<float>(a.src), factors.as<float>(), rows, cols);
    LAUNCH_CHECK("scaleColumns");
  }
  return undefined(env);
}

napi_value transpose(napi_env env, const TransposeArgs& a) {
  const int64_t rows = a.rows, cols = a.cols;
  checkBytes(a.dst, static_cast<size_t>(rows * cols) * 4, "transpose");
  checkBytes(a.src, static_cast<size_t>(rows * cols) * 4, "transpose");
  if (rows * cols == 0) return undefined(env);
  if ((rows + 31) / 32 > 65535) throw NativeError("transpose: too many rows");
  dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>((rows + 31) / 32));
  transposeKernel<<<grid, dim3(32, 8), 0, ctx().stream>>>(at<float>(a.dst), at<float>(a.src), rows, cols);
  LAUNCH_CHECK("transpose");
  return undefined(env);
}

}  // namespace js
