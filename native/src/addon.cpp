// The addon's module: one binary for Node and Electron. Its functions are declared once, in
// the CudaNative interface of src-main/engine/tensor/cuda-addon.ts; scripts/addon-api.mjs
// derives from it native/build/generated/addon-api.h — the argument structs and readers, the
// registration table and the ABI version registered here. Each function's body lives beside
// the kernels it launches (memory.cpp, rms-norm.cu, …). Operations enqueue on the compute
// stream and return; a promise's wait for the GPU runs on a libuv worker thread, never on the
// JavaScript thread.
#define ADDON_REGISTRY
#include "addon-api.h"
#include "context.h"

namespace {

void cleanup(void*) { ctx().closing.store(true); }

}  // namespace

NAPI_MODULE_INIT() {
  // Once per process: the addon holds one CUDA context whatever loads it.
  static bool hooked = false;
  if (!hooked) {
    hooked = true;
    napi_add_env_cleanup_hook(env, cleanup, nullptr);
  }
  for (const AddonFunction& f : addon_registry::kFunctions) {
    napi_value fn;
    if (napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.callback, nullptr, &fn) != napi_ok) return nullptr;
    if (napi_set_named_property(env, exports, f.name, fn) != napi_ok) return nullptr;
  }
  napi_value abi;
  napi_create_uint32(env, kAbiVersion, &abi);
  napi_set_named_property(env, exports, "abiVersion", abi);
  return exports;
}
