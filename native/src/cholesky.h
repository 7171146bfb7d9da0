// CholeskyQR passes on the GPU, with no host round trip: the Gram of Y in float64, its
// Cholesky factor and R⁻¹ in float64 by one thread block, then Y·R⁻¹ in float32. The same
// pivot test and shift rule as tensor/cholesky-qr.ts (PIVOT_REL, SHIFT_REL).
#pragma once
#include <cstdint>

/** Pass flags, one int per pass. */
enum CholeskyFlag : int { kClean = 0, kShifted = 1, kZero = 2, kNonFinite = 4 };

/**
 * `passes` passes from src (rows×cols) into dst; flags[p] (device ints) tells how pass p went.
 * A zero Gram writes zeros to dst and stops there; a non-finite one leaves dst undefined.
 */
void choleskyQrPasses(float* dst, const float* src, int64_t rows, int64_t cols, int passes, int* flags);
