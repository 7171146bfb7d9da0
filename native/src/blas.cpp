// The products that go to cuBLAS and their bindings: typed products (float32 or bfloat16
// operands, float32 accumulation, optionally tf32 tensor cores, batched at fixed strides) for
// the low-rank solvers and the transformer alike, and Gram matrices AᵀA in float64; the plain
// float32 product is CholeskyQR's (cholesky.cu).
#include "blas.h"

#include <climits>

#include "addon-api.h"
#include "check.h"
#include "context.h"
#include "convert.cuh"

namespace {

void blasCheck(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw NativeError(std::string(what) + ": " + cublasStatusText(s));
}

int dim(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) throw NativeError(std::string("matrix dimension ") + what + " out of cuBLAS's range");
  return static_cast<int>(v);
}

}  // namespace

// cuBLAS is column-major: a row-major X is the column-major Xᵀ. So C = op(A)·op(B) is computed
// as Cᵀ = op(B)ᵀ·op(A)ᵀ with the stored buffers as they are: the leading dimension of each is
// its row-major column count, and a transposed operand becomes CUBLAS_OP_T.
void gemm(float* c, const float* a, const float* b, int64_t m, int64_t n, int64_t k, bool transA, bool transB, bool tf32, float alpha,
          float beta) {
  requireReady();
  Context& x = ctx();
  if (m == 0 || n == 0) return;
  const int lda = dim(transA ? m : k, "lda");
  const int ldb = dim(transB ? k : n, "ldb");
  const cublasComputeType_t compute = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  blasCheck(x.cublas.gemmEx(x.blas, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, dim(n, "n"), dim(m, "m"),
                            dim(k, "k"), &alpha, b, CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta, c, CUDA_R_32F, dim(n, "ldc"), compute,
                            CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
}

void gemmTyped(const TypedGemm& g) {
  requireReady();
  Context& x = ctx();
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  auto cudaType = [](int t) {
    if (t == kF32) return CUDA_R_32F;
    if (t == kBF16) return CUDA_R_16BF;
    throw NativeError("gemmTyped: operands are float32 or bfloat16");
  };
  const cudaDataType ab = cudaType(g.abType), ct = cudaType(g.cType);
  const int lda = dim(g.transA ? g.m : g.k, "lda");
  const int ldb = dim(g.transB ? g.k : g.n, "ldb");
  const cublasComputeType_t compute = g.abType == kF32 && g.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const cublasOperation_t opB = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N, opA = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (g.batch == 1) {
    blasCheck(x.cublas.gemmEx(x.blas, opB, opA, dim(g.n, "n"), dim(g.m, "m"), dim(g.k, "k"), &g.alpha, g.b, ab, ldb, g.a, ab, lda, &g.beta, g.c,
                              ct, dim(g.n, "ldc"), compute, CUBLAS_GEMM_DEFAULT),
              "cublasGemmEx");
    return;
  }
  blasCheck(x.cublas.gemmStridedBatchedEx(x.blas, opB, opA, dim(g.n, "n"), dim(g.m, "m"), dim(g.k, "k"), &g.alpha, g.b, ab, ldb, g.strideB, g.a, ab,
                                          lda, g.strideA, &g.beta, g.c, ct, dim(g.n, "ldc"), g.strideC, dim(g.batch, "batch"), compute,
                                          CUBLAS_GEMM_DEFAULT),
            "cublasGemmStridedBatchedEx");
}

void gram(double* g, const float* a, int64_t rows, int64_t cols) {
  requireReady();
  Context& x = ctx();
  const size_t bytes = static_cast<size_t>(rows * cols) * sizeof(double);
  auto* a64 = static_cast<double*>(deviceAlloc(bytes));
  try {
    launchToDouble(a64, a, rows * cols, x.stream);
    const double one = 1, zero = 0;
    // G = AᵀA: with A row-major (rows×cols), the column-major view is Aᵀ (cols×rows), so
    // G = view · viewᵀ.
    blasCheck(x.cublas.dgemm(x.blas, CUBLAS_OP_N, CUBLAS_OP_T, dim(cols, "cols"), dim(cols, "cols"), dim(rows, "rows"), &one, a64,
                             dim(cols, "lda"), a64, dim(cols, "ldb"), &zero, g, dim(cols, "ldc")),
              "cublasDgemm");
  } catch (...) {
    deviceFree(a64, bytes);
    throw;
  }
  deviceFree(a64, bytes);
}

namespace js {

napi_value gemmTyped(napi_env env, const GemmTypedArgs& a) {
  requireRange(a.batch, 1, INT32_MAX, "gemmTyped: batch");
  TypedGemm g{};
  g.cType = a.cType;
  g.abType = a.abType;
  g.m = a.m;
  g.n = a.n;
  g.k = a.k;
  g.transA = a.transA;
  g.transB = a.transB;
  g.tf32 = a.tf32;
  g.alpha = static_cast<float>(a.alpha);
  g.beta = static_cast<float>(a.beta);
  g.batch = a.batch;
  g.strideA = a.strideA;
  g.strideB = a.strideB;
  g.strideC = a.strideC;
  // The last element each operand touches: its offset, batch − 1 strides, one matrix.
  auto need = [&](int64_t off, int64_t stride, int64_t elems, int t) { return actBytes(off + (g.batch - 1) * stride + elems, t); };
  checkBytes(a.a, need(a.offsetA, g.strideA, g.m * g.k, g.abType), "gemmTyped A");
  checkBytes(a.b, need(a.offsetB, g.strideB, g.k * g.n, g.abType), "gemmTyped B");
  checkBytes(a.c, need(a.offsetC, g.strideC, g.m * g.n, g.cType), "gemmTyped C");
  g.a = at<const uint8_t>(a.a) + actBytes(a.offsetA, g.abType);
  g.b = at<const uint8_t>(a.b) + actBytes(a.offsetB, g.abType);
  g.c = at<uint8_t>(a.c) + actBytes(a.offsetC, g.cType);
  ::gemmTyped(g);
  return undefined(env);
}

/** Resolves with AᵀA (cols×cols, float64). */
napi_value gram(napi_env env, const GramArgs& a) {
  requireRange(a.cols, 1, INT64_MAX, "gram: cols");
  checkBytes(a.a, static_cast<size_t>(a.rows * a.cols) * 4, "gram");
  Temp g(static_cast<size_t>(a.cols * a.cols) * sizeof(double));
  ::gram(g.as<double>(), at<float>(a.a), a.rows, a.cols);
  return deliver(env, g.ptr, g.bytes, ResultKind::Float64s);
}

}  // namespace js
