// The products that go to cuBLAS: row-major C = α·op(A)·op(B) + β·C in float32 (optionally
// on tensor cores as tf32), and Gram matrices AᵀA in float64.
#pragma once
#include <cstdint>

/** Row-major C (m×n) = α·op(A)·op(B) + β·C, op(A) m×k, op(B) k×n; A and B stored row-major. */
void gemm(float* c, const float* a, const float* b, int64_t m, int64_t n, int64_t k, bool transA, bool transB, bool tf32, float alpha,
          float beta);

/** Row-major G (cols×cols) = AᵀA accumulated in float64 for a row-major float32 A (rows×cols). */
void gram(double* g, const float* a, int64_t rows, int64_t cols);

/** Operand and result types of a typed product: DtypeCode kF32 or kBF16 for A and B, kF32 or kBF16 for C. */
struct TypedGemm {
  void* c;
  const void* a;
  const void* b;
  int abType, cType;
  int64_t m, n, k;
  bool transA, transB;
  /** Float32 products only: let the tensor cores round the inputs to tf32. */
  bool tf32;
  float alpha, beta;
  /** Batched over `batch` products at fixed element strides (1: a single product). */
  int64_t batch;
  int64_t strideA, strideB, strideC;
};

/** Row-major C = α·op(A)·op(B) + β·C with float32 accumulation, for float32 or bfloat16 operands. */
void gemmTyped(const TypedGemm& g);
