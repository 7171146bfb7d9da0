// Reductions over whole buffers, in float64 and in a fixed order so that a result does not
// depend on scheduling: the second stage other ops' kernels share (quantize.cu's error sums).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

/** out[k] = Σ_b partials[b·stride + k] for k < outputs, one block per k, in a fixed order. */
void launchReducePartials(double* out, const double* partials, int blocks, int stride, int outputs, cudaStream_t stream);
