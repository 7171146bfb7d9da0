// The optimizer's kernel: AdamW over a flat block of float32 parameters on the device.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

/** Per-step constants of the update, computed on the host as train/adamw.ts computes them. */
struct AdamWConstants {
  double beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps;
  double stepSize;  // lr / (1 − β1^t)
  double bc2Sqrt;   // √(1 − β2^t)
  double shrink;    // 1 − lr·wd (1: no decay)
  double divisor;   // gradients are sums of `divisor` micro-batches: g = float(sum / divisor)
  double clip;      // then g = float(g · clip) where clip ≠ 1
};

/**
 * train/adamw.ts's update, element by element and bit for bit: every operation in float64
 * with round-to-nearest and no fused multiply-adds, rounded to float32 where the host stores.
 */
void launchAdamW(float* p, const float* g, float* m, float* v, int64_t count, const AdamWConstants& c, cudaStream_t stream);
