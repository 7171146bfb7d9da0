// The CUDA libraries opened at run time rather than linked: the driver (libcuda.so.1, which
// the statically linked CUDA runtime needs) and cuBLAS 13. Opening them ourselves lets a
// missing library be named in one line, and lets the engine look where pip's nvidia-* wheels
// and the CUDA toolkit put them without LD_LIBRARY_PATH.
#pragma once
#include <cublas_v2.h>
#include <string>
#include <vector>

/** cublasGemmEx with a cublasComputeType_t (older headers overload it with a cudaDataType one). */
using GemmExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*, const void*, cudaDataType,
                                    int, const void*, cudaDataType, int, const void*, void*, cudaDataType, int, cublasComputeType_t,
                                    cublasGemmAlgo_t);

/** cublasGemmStridedBatchedEx with a cublasComputeType_t. */
using GemmStridedBatchedExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*, const void*,
                                                  cudaDataType, int, long long, const void*, cudaDataType, int, long long, const void*, void*,
                                                  cudaDataType, int, long long, int, cublasComputeType_t, cublasGemmAlgo_t);

struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) setStream = nullptr;
  decltype(&cublasSetMathMode) setMathMode = nullptr;
  decltype(&cublasGetVersion_v2) getVersion = nullptr;
  GemmExFn gemmEx = nullptr;
  GemmStridedBatchedExFn gemmStridedBatchedEx = nullptr;
  decltype(&cublasDgemm_v2) dgemm = nullptr;
  std::string path;
};

/** Opens libcuda.so.1 (kept open); returns its path or throws NativeError with the reason. */
std::string openDriver();

/** Opens cuBLAS from the first of `dirs` that has it, then from the linker's search path. */
CublasApi openCublas(const std::vector<std::string>& dirs);

const char* cublasStatusText(cublasStatus_t s);
