// Element-type conversions other ops need: stored weights (F32/F16/BF16/F64) to float32 — the
// file reads of memory.cpp convert on the GPU —, and float32 to float64 (the Grams of blas.cpp).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

/** Stored little-endian values → float32 (F16/BF16 exact, F64 rounded to nearest). */
void launchConvert(float* out, const void* in, int dtype, int64_t count, cudaStream_t stream);

void launchToDouble(double* out, const float* in, int64_t count, cudaStream_t stream);
