// Element types by code, as JavaScript names them (NATIVE_DTYPES in
// src-main/engine/tensor/cuda-addon.ts): stored weights are any of them, activations that feed
// a product float32 or bfloat16, everything else float32.
#pragma once

enum DtypeCode : int { kF32 = 0, kF16 = 1, kBF16 = 2, kF64 = 3 };

inline int dtypeBytes(int dtype) {
  switch (dtype) {
    case kF16:
    case kBF16: return 2;
    case kF64: return 8;
    default: return 4;
  }
}
