#include "context.h"

#include <cstring>
#include <dlfcn.h>

#include "check.h"

namespace {

__global__ void probeKernel(int* out) { *out = 42; }

void throwBlas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw NativeError(std::string(what) + ": " + cublasStatusText(s));
}

}  // namespace

Context& ctx() {
  static Context c;
  return c;
}

void requireReady() {
  if (!ctx().ready) throw NativeError("the CUDA device is not initialized (call init first)");
}

const DeviceFacts& initContext(const std::vector<std::string>& libDirs) {
  Context& c = ctx();
  if (c.ready) return c.facts;
  DeviceFacts f;
  f.driverPath = openDriver();
  int driver = 0;
  CUDA_CHECK(cudaDriverGetVersion(&driver));
  f.driverVersion = driver;
  CUDA_CHECK(cudaRuntimeGetVersion(&f.runtimeVersion));
  if (driver < f.runtimeVersion) {
    throw NativeError("the NVIDIA driver supports CUDA " + std::to_string(driver / 1000) + "." + std::to_string((driver % 1000) / 10) +
                      " but this addon needs CUDA " + std::to_string(f.runtimeVersion / 1000) + "." +
                      std::to_string((f.runtimeVersion % 1000) / 10) + ": update the NVIDIA driver (580 or newer)");
  }
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0)) throw NativeError("no CUDA GPU found (the NVIDIA driver sees no device)");
  cudaCheck(e, "cudaGetDeviceCount");
  CUDA_CHECK(cudaSetDevice(c.device));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, c.device));
  f.name = prop.name;
  f.totalMemory = prop.totalGlobalMem;
  f.multiprocessors = prop.multiProcessorCount;
  f.major = prop.major;
  f.minor = prop.minor;

  CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaStreamCreateWithFlags(&c.transfer, cudaStreamNonBlocking));
  // Freed memory stays in the pool for the next matrix instead of going back to the driver.
  cudaMemPool_t pool;
  CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, c.device));
  uint64_t keep = UINT64_MAX;
  CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));

  // A kernel of this build must run here (a GPU outside the build's targets fails now, by name).
  int* probe = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&probe), sizeof(int), c.stream));
  probeKernel<<<1, 1, 0, c.stream>>>(probe);
  e = cudaGetLastError();
  if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorUnsupportedPtxVersion) {
    throw NativeError("this GPU (" + f.name + ", compute capability " + std::to_string(f.major) + "." + std::to_string(f.minor) +
                      ") is not among the architectures the addon was built for: rebuild with LOFTQ_CUDA_ARCHS including " +
                      std::to_string(f.major * 10 + f.minor));
  }
  cudaCheck(e, "launching a probe kernel");
  int answer = 0;
  CUDA_CHECK(cudaMemcpyAsync(&answer, probe, sizeof(int), cudaMemcpyDeviceToHost, c.stream));
  CUDA_CHECK(cudaFreeAsync(probe, c.stream));
  CUDA_CHECK(cudaStreamSynchronize(c.stream));
  if (answer != 42) throw NativeError("the probe kernel did not run");

  c.cublas = openCublas(libDirs);
  throwBlas(c.cublas.create(&c.blas), "cublasCreate");
  throwBlas(c.cublas.setStream(c.blas, c.stream), "cublasSetStream");
  // Full float32 unless a call asks for tf32 through its compute type.
  throwBlas(c.cublas.setMathMode(c.blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  throwBlas(c.cublas.getVersion(c.blas, &f.cublasVersion), "cublasGetVersion");
  f.cublasPath = c.cublas.path;
  c.facts = f;
  c.ready = true;
  return c.facts;
}

void* deviceAlloc(size_t bytes) {
  requireReady();
  Context& c = ctx();
  void* p = nullptr;
  cudaError_t e = cudaMallocAsync(&p, bytes, c.stream);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    throw NativeError("out of memory allocating " + std::to_string(bytes >> 20) + " MiB on the GPU (" + std::to_string(free >> 20) +
                      " MiB free of " + std::to_string(total >> 20) + ")");
  }
  cudaCheck(e, "cudaMallocAsync");
  accountBytes(static_cast<int64_t>(bytes));
  return p;
}

void accountBytes(int64_t delta) {
  Context& c = ctx();
  int64_t now = c.inUse.fetch_add(delta) + delta;
  int64_t seen = c.peak.load();
  while (now > seen && !c.peak.compare_exchange_weak(seen, now)) {
  }
}

void deviceFree(void* ptr, size_t bytes) {
  Context& c = ctx();
  if (!ptr || c.closing.load() || !c.ready) return;
  // Stream-ordered: work already enqueued that reads ptr still sees it.
  cudaFreeAsync(ptr, c.stream);
  accountBytes(-static_cast<int64_t>(bytes));
}

Staging* acquireStaging(size_t bytes) {
  Context& c = ctx();
  for (Staging* s : c.staging) {
    if (s->held || s->bytes < bytes) continue;
    if (cudaEventQuery(s->done) != cudaSuccess) continue;
    s->held = true;
    return s;
  }
  auto* s = new Staging();
  size_t size = 1 << 16;
  while (size < bytes) size <<= 1;
  CUDA_CHECK(cudaHostAlloc(&s->host, size, cudaHostAllocDefault));
  s->bytes = size;
  CUDA_CHECK(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming));
  s->held = true;
  c.staging.push_back(s);
  return s;
}

void releaseStaging(Staging* s, bool afterCopy) {
  if (afterCopy) CUDA_CHECK(cudaEventRecord(s->done, ctx().stream));
  s->held = false;
}

void uploadHost(void* dst, const void* src, size_t bytes) {
  requireReady();
  if (bytes == 0) return;
  Staging* s = acquireStaging(bytes);
  std::memcpy(s->host, src, bytes);
  try {
    CUDA_CHECK(cudaMemcpyAsync(dst, s->host, bytes, cudaMemcpyHostToDevice, ctx().stream));
  } catch (...) {
    s->held = false;
    throw;
  }
  releaseStaging(s, true);
}
