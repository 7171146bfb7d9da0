#include "libraries.h"

#include <dlfcn.h>
#include <link.h>

#include "check.h"

namespace {

std::string loadedPath(void* handle, const std::string& fallback) {
  struct link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && map->l_name[0]) return map->l_name;
  return fallback;
}

std::string lastDlError() {
  const char* e = dlerror();
  return e ? e : "unknown error";
}

}  // namespace

std::string openDriver() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    throw NativeError("no NVIDIA driver found: libcuda.so.1 could not be loaded (" + lastDlError() +
                      "); install the NVIDIA driver, version 580 or newer for CUDA 13");
  }
  return loadedPath(h, "libcuda.so.1");
}

CublasApi openCublas(const std::vector<std::string>& dirs) {
  const char* kLt = "libcublasLt.so.13";
  const char* kBlas = "libcublas.so.13";
  void* handle = nullptr;
  std::string firstError;
  std::string searched;
  for (const auto& dir : dirs) {
    if (!searched.empty()) searched += ", ";
    searched += dir;
    // cuBLAS needs cuBLASLt from the same release; loading it first from the same folder
    // satisfies the dependency even where the folder is not on the linker's path.
    std::string lt = dir + "/" + kLt;
    dlopen(lt.c_str(), RTLD_NOW | RTLD_GLOBAL);
    std::string blas = dir + "/" + kBlas;
    handle = dlopen(blas.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (handle) break;
    if (firstError.empty()) {
      std::string e = lastDlError();
      if (e.find("No such file") == std::string::npos) firstError = e;
    }
  }
  if (!handle) {
    handle = dlopen(kBlas, RTLD_NOW | RTLD_GLOBAL);
    if (!handle && firstError.empty()) firstError = lastDlError();
  }
  if (!handle) {
    throw NativeError(std::string(kBlas) + " (cuBLAS 13) could not be loaded (" + firstError + "; searched " +
                      (searched.empty() ? std::string("the linker's path") : searched + " and the linker's path") +
                      "): install the CUDA 13 toolkit or the pip wheel nvidia-cublas (CUDA 13), or set LOFTQ_CUDA_LIB_DIR "
                      "to the folder that holds libcublas.so.13");
  }
  CublasApi api;
  api.path = loadedPath(handle, kBlas);
  auto sym = [&](const char* name) {
    void* p = dlsym(handle, name);
    if (!p) throw NativeError(std::string(api.path) + " has no " + name + ": it is not cuBLAS 13");
    return p;
  };
  api.create = reinterpret_cast<decltype(api.create)>(sym("cublasCreate_v2"));
  api.destroy = reinterpret_cast<decltype(api.destroy)>(sym("cublasDestroy_v2"));
  api.setStream = reinterpret_cast<decltype(api.setStream)>(sym("cublasSetStream_v2"));
  api.setMathMode = reinterpret_cast<decltype(api.setMathMode)>(sym("cublasSetMathMode"));
  api.getVersion = reinterpret_cast<decltype(api.getVersion)>(sym("cublasGetVersion_v2"));
  api.gemmEx = reinterpret_cast<decltype(api.gemmEx)>(sym("cublasGemmEx"));
  api.gemmStridedBatchedEx = reinterpret_cast<decltype(api.gemmStridedBatchedEx)>(sym("cublasGemmStridedBatchedEx"));
  api.dgemm = reinterpret_cast<decltype(api.dgemm)>(sym("cublasDgemm_v2"));
  return api;
}

const char* cublasStatusText(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "out of memory (cuBLAS allocation failed)";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "not supported on this GPU";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
    default: return "unknown status";
  }
}
