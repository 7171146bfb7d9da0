// The one GPU the addon works on, and what every operation shares: the compute stream
// (every operation is enqueued on it in call order), a transfer stream for file reads,
// the cuBLAS handle, stream-ordered allocations with byte accounting, and pinned staging
// buffers for host transfers.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "libraries.h"

struct DeviceFacts {
  std::string name;
  size_t totalMemory = 0;
  int multiprocessors = 0;
  int major = 0, minor = 0;
  int driverVersion = 0, runtimeVersion = 0;
  int cublasVersion = 0;
  std::string cublasPath, driverPath;
};

/** A pinned host buffer for one transfer; reusable once `done` has fired. */
struct Staging {
  void* host = nullptr;
  size_t bytes = 0;
  cudaEvent_t done = nullptr;
  bool held = false;
};

struct Context {
  bool ready = false;
  DeviceFacts facts;
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaStream_t transfer = nullptr;
  cublasHandle_t blas = nullptr;
  CublasApi cublas;
  std::atomic<int64_t> inUse{0};
  std::atomic<int64_t> peak{0};
  std::vector<Staging*> staging;
  /** Set at process teardown: finalizers must not call into CUDA any more. */
  std::atomic<bool> closing{false};
};

Context& ctx();

/** Opens the GPU and cuBLAS once; later calls return the same facts. */
const DeviceFacts& initContext(const std::vector<std::string>& libDirs);

void requireReady();

void* deviceAlloc(size_t bytes);
void deviceFree(void* ptr, size_t bytes);
/** Counts bytes allocated (positive) or freed (negative) outside deviceAlloc, for the peak. */
void accountBytes(int64_t delta);

/** A staging buffer of at least `bytes`, held until release(); waits for nothing. */
Staging* acquireStaging(size_t bytes);
/** Hands a staging buffer back; `afterCopy` marks it busy until the stream passes this point. */
void releaseStaging(Staging* s, bool afterCopy);

/** Host → device on the compute stream through a staging buffer (returns at once). */
void uploadHost(void* dst, const void* src, size_t bytes);
