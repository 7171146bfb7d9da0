// CholeskyQR passes on the GPU, with no host round trip: the Gram of Y in float64, its
// Cholesky factor and R⁻¹ in float64 by one thread block, then Y·R⁻¹ in float32. The same
// pivot test and shift rule as tensor/cholesky-qr.ts (PIVOT_REL, SHIFT_REL).
#include "addon-api.h"
#include "blas.h"
#include "check.h"
#include "context.h"

namespace {

/** Pass flags, one int per pass. */
enum CholeskyFlag : int { kClean = 0, kShifted = 1, kZero = 2, kNonFinite = 4 };

constexpr double kPivotRel = 1e-12;
constexpr double kShiftRel = 1e-10;
constexpr int kThreads = 256;

// One block: G (k×k, float64) → upper R with RᵀR = G (+ shift·I if the pivot test fails), then
// X = R⁻¹ (float64) rounded into rinv (float32). `work` holds 2·k² doubles (R, then X).
__global__ void __launch_bounds__(kThreads) choleskyInverseKernel(const double* g, int k, double* work, float* rinv, int* flag) {
  __shared__ double scale, trace, shift;
  __shared__ int status, failed;
  double* r = work;
  double* x = work + static_cast<int64_t>(k) * k;
  const int tid = threadIdx.x;
  if (tid == 0) {
    scale = 0;
    trace = 0;
    status = kClean;
    for (int i = 0; i < k; i++) {
      const double d = g[static_cast<int64_t>(i) * k + i];
      if (!isfinite(d)) status = kNonFinite;
      scale = fmax(scale, d);
      trace += d;
    }
    if (status == kClean && scale == 0) status = kZero;
    shift = 0;
  }
  __syncthreads();
  const int64_t kk = static_cast<int64_t>(k) * k;
  if (status == kNonFinite) {
    if (tid == 0) *flag = kNonFinite;
    return;
  }
  if (status == kZero) {
    for (int64_t i = tid; i < kk; i += blockDim.x) rinv[i] = 0.f;
    if (tid == 0) *flag = kZero;
    return;
  }
  for (int attempt = 0;; attempt++) {
    for (int64_t idx = tid; idx < kk; idx += blockDim.x) {
      const int i = static_cast<int>(idx / k), j = static_cast<int>(idx % k);
      r[idx] = j >= i ? g[static_cast<int64_t>(i) * k + j] + (i == j ? shift : 0.0) : 0.0;
    }
    if (tid == 0) failed = 0;
    __syncthreads();
    // The first attempt must clear the relative pivot bound; shifted ones only positivity.
    const double minPivot = attempt == 0 ? kPivotRel * scale : 0.0;
    for (int j = 0; j < k; j++) {
      if (tid == 0) {
        const double d = r[static_cast<int64_t>(j) * k + j];
        if (!(d > minPivot)) failed = 1;
        else r[static_cast<int64_t>(j) * k + j] = sqrt(d);
      }
      __syncthreads();
      if (failed) break;
      const double rjj = r[static_cast<int64_t>(j) * k + j];
      for (int i = j + 1 + tid; i < k; i += blockDim.x) r[static_cast<int64_t>(j) * k + i] /= rjj;
      __syncthreads();
      // Right-looking update of the trailing upper triangle: A[p][q] −= R[j][p]·R[j][q].
      const int m = k - j - 1;
      for (int64_t idx = tid; idx < static_cast<int64_t>(m) * m; idx += blockDim.x) {
        const int p = j + 1 + static_cast<int>(idx / m), q = j + 1 + static_cast<int>(idx % m);
        if (q >= p) r[static_cast<int64_t>(p) * k + q] -= r[static_cast<int64_t>(j) * k + p] * r[static_cast<int64_t>(j) * k + q];
      }
      __syncthreads();
    }
    if (!failed) break;
    if (tid == 0) {
      shift = shift == 0 ? kShiftRel * trace : shift * 100;
      status = kShifted;
    }
    __syncthreads();
  }
  // X = R⁻¹ column by column (back substitution), one thread per column.
  for (int j = tid; j < k; j += blockDim.x) {
    for (int i = 0; i < k; i++) x[static_cast<int64_t>(i) * k + j] = 0;
    x[static_cast<int64_t>(j) * k + j] = 1.0 / r[static_cast<int64_t>(j) * k + j];
    for (int i = j - 1; i >= 0; i--) {
      double s = 0;
      for (int l = i + 1; l <= j; l++) s += r[static_cast<int64_t>(i) * k + l] * x[static_cast<int64_t>(l) * k + j];
      x[static_cast<int64_t>(i) * k + j] = -s / r[static_cast<int64_t>(i) * k + i];
    }
  }
  __syncthreads();
  for (int64_t i = tid; i < kk; i += blockDim.x) rinv[i] = __double2float_rn(x[i]);
  if (tid == 0) *flag = status;
}

/**
 * `passes` passes from src (rows×cols) into dst; flags[p] (device ints) tells how pass p went.
 * A zero Gram writes zeros to dst and stops there; a non-finite one leaves dst undefined.
 */
void choleskyQrPasses(float* dst, const float* src, int64_t rows, int64_t cols, int passes, int* flags) {
  requireReady();
  Context& c = ctx();
  const size_t kk = static_cast<size_t>(cols * cols);
  const size_t bytes = static_cast<size_t>(rows * cols) * sizeof(float);
  auto* g = static_cast<double*>(deviceAlloc(kk * sizeof(double)));
  auto* work = static_cast<double*>(deviceAlloc(2 * kk * sizeof(double)));
  auto* rinv = static_cast<float*>(deviceAlloc(kk * sizeof(float)));
  // Passes alternate between dst and a scratch block so the last one lands in dst.
  float* scratch = passes > 1 ? static_cast<float*>(deviceAlloc(bytes)) : nullptr;
  try {
    const float* in = src;
    for (int p = 0; p < passes; p++) {
      float* out = ((passes - 1 - p) % 2 == 0) ? dst : scratch;
      gram(g, in, rows, cols);
      choleskyInverseKernel<<<1, kThreads, 0, c.stream>>>(g, static_cast<int>(cols), work, rinv, flags + p);
      LAUNCH_CHECK("choleskyInverse");
      gemm(out, in, rinv, rows, cols, cols, false, false, false, 1.f, 0.f);
      in = out;
    }
  } catch (...) {
    deviceFree(g, kk * sizeof(double));
    deviceFree(work, 2 * kk * sizeof(double));
    deviceFree(rinv, kk * sizeof(float));
    if (scratch) deviceFree(scratch, bytes);
    throw;
  }
  deviceFree(g, kk * sizeof(double));
  deviceFree(work, 2 * kk * sizeof(double));
  deviceFree(rinv, kk * sizeof(float));
  if (scratch) deviceFree(scratch, bytes);
}

}  // namespace

namespace js {

/** Resolves with one flag per pass (CholeskyFlag). */
napi_value cholQr(napi_env env, const CholQrArgs& a) {
  requireRange(a.rows, 1, INT64_MAX, "cholQr: rows");
  requireRange(a.cols, 1, 4096, "cholQr: cols");
  requireRange(a.passes, 1, 8, "cholQr: passes");
  if (a.dst == a.src) throw JsError("cholQr: dst and src must differ");
  checkBytes(a.dst, static_cast<size_t>(a.rows * a.cols) * 4, "cholQr dst");
  checkBytes(a.src, static_cast<size_t>(a.rows * a.cols) * 4, "cholQr src");
  Temp flags(static_cast<size_t>(a.passes) * sizeof(int));
  choleskyQrPasses(at<float>(a.dst), at<float>(a.src), a.rows, a.cols, static_cast<int>(a.passes), flags.as<int>());
  return deliver(env, flags.ptr, flags.bytes, ResultKind::Bytes);
}

}  // namespace js
