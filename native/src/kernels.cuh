// The addon's own kernels (everything that is not a cuBLAS product). Each launcher enqueues
// on `stream` and returns; sizes are element counts. dtype codes match NATIVE_DTYPES in
// src-main/engine/tensor/cuda-addon.ts.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

enum DtypeCode : int { kF32 = 0, kF16 = 1, kBF16 = 2, kF64 = 3 };

int dtypeBytes(int dtype);

/** Stored little-endian values → float32 (F16/BF16 exact, F64 rounded to nearest). */
void launchConvert(float* out, const void* in, int dtype, int64_t count, cudaStream_t stream);

/** Standard normal values from a counter-based generator: value i depends only on (seed, i). */
void launchRandomNormal(float* out, int64_t count, uint32_t seed, cudaStream_t stream);

void launchScaleColumns(float* out, const float* in, const float* factors, int64_t rows, int64_t cols, cudaStream_t stream);
void launchTranspose(float* out, const float* in, int64_t rows, int64_t cols, cudaStream_t stream);
void launchToDouble(double* out, const float* in, int64_t count, cudaStream_t stream);

/** Σ x² in float64 into out[0]; `partials` holds kReduceBlocks doubles. */
constexpr int kReduceBlocks = 1024;
void launchSumSquares(double* out, double* partials, const float* x, int64_t count, cudaStream_t stream);

/** Smallest index of a NaN or ±∞ into *out (which must start at UINT64_MAX). */
void launchFindNonFinite(unsigned long long* out, const float* x, int64_t count, cudaStream_t stream);

struct QuantizeArgs {
  const float* x;
  const float* ref;
  uint8_t* codes;
  float* absmax;
  float* diff;              // may be null
  const uint8_t* prevCodes; // may be null
  const float* prevAbsmax;  // may be null
  const float* levels;
  int levelCount;
  int64_t count;
  int64_t blockSize;
  // How scale and codes are chosen: 0 absmax (scale = the block's absmax, nearest level of
  // x/absmax), 1 q8_0 and 2 q4_0 (llama.cpp's reference quantizers in float32, the scale kept
  // being llama.cpp's fp16 d; see src-main/engine/tensor/quantize-kernel.ts).
  int rule;
};

/**
 * Blockwise absmax quantization fused with ref − Q and the error sums: out[0] = Σ(ref − Q)²,
 * out[1] = Σ(x − Q_prev)² (0 without prev). `partials` holds 2·quantizeGrid(...) doubles.
 */
void launchQuantize(const QuantizeArgs& a, double* out, double* partials, cudaStream_t stream);
int quantizeGrid(int64_t count, int64_t blockSize);

/** Σ(x − dequantize(codes, absmax))² into out[0]; `partials` holds quantizeGrid(...) doubles. */
void launchQuantError(double* out, double* partials, const float* x, const uint8_t* codes, const float* absmax, const float* levels,
                      int levelCount, int64_t count, int64_t blockSize, cudaStream_t stream);

void launchDequantize(float* out, const uint8_t* codes, const float* absmax, const float* levels, int levelCount, int64_t count,
                      int64_t blockSize, cudaStream_t stream);

/** Codes (one byte each) ↔ a little-endian bit stream, code i in bits [i·bits, (i+1)·bits). */
void launchPack(uint8_t* out, const uint8_t* codes, int64_t count, int bits, cudaStream_t stream);
void launchUnpack(uint8_t* codes, const uint8_t* packed, int64_t count, int bits, cudaStream_t stream);
