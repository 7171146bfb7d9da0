// Errors of the native layer: every CUDA and cuBLAS call is checked and a failure becomes a
// NativeError with the call and the library's own message, which the Node-API layer turns
// into a JavaScript exception or a rejected promise.
#pragma once
#include <cuda_runtime.h>
#include <stdexcept>
#include <string>

struct NativeError : std::runtime_error {
  explicit NativeError(const std::string& m) : std::runtime_error(m) {}
};

inline void cudaCheck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    // Clears a non-sticky error so the next call does not report it again.
    cudaGetLastError();
    throw NativeError(std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
  }
}

#define CUDA_CHECK(call) cudaCheck((call), #call)
// After a kernel launch: configuration errors show at once, execution errors at the next sync.
#define LAUNCH_CHECK(name) cudaCheck(cudaGetLastError(), "launching " name)
