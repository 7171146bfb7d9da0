// Embedding rows: out[n, :] = float(table[ids[n], :]) for a float32 or bfloat16 table [V, H].
#include "addon-api.h"
#include "common.cuh"
#include "context.h"

namespace {

using namespace common;

template <typename T>
__global__ void embedKernel(float* out, const T* table, const int32_t* ids, int64_t rows, int64_t hidden) {
  GRID_STRIDE(i, rows * hidden) {
    const int64_t r = i / hidden, c = i % hidden;
    out[i] = load(table, static_cast<int64_t>(ids[r]) * hidden + c);
  }
}

}  // namespace

namespace js {

napi_value embedRows(napi_env env, const EmbedRowsArgs& a) {
  requireRange(a.vocab, 1, INT64_MAX, "embedRows: vocab");
  const int64_t rows = a.rows, hidden = a.hidden;
  checkBytes(a.out, actBytes(rows * hidden, kF32), "embedRows out");
  checkBytes(a.table, actBytes(a.vocab * hidden, a.tableType), "embedRows table");
  checkBytes(a.ids, static_cast<size_t>(rows) * 4, "embedRows ids");
  DISPATCH(a.tableType, "embedRows",
           (embedKernel<T><<<gridFor(rows * hidden), kThreads, 0, ctx().stream>>>(at<float>(a.out), static_cast<const T*>(a.table->ptr), at<int32_t>(a.ids), rows, hidden)));
  return undefined(env);
}

}  // namespace js
