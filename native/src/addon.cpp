// The Node-API surface of the addon (one binary for Node and Electron): argument checking,
// device buffers as tagged externals, and promises for every result that reaches the host.
// Operations enqueue on the compute stream and return; a promise's wait for the GPU runs on
// a libuv worker thread, never on the JavaScript thread. The exports are typed in
// src-main/engine/tensor/cuda-addon.ts (CudaNative); ABI_VERSION changes with them.
#include <node_api.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

#include "blas.h"
#include "cholesky.h"
#include "check.h"
#include "context.h"
#include "kernels.cuh"
#include "nn.h"
#include "optimizer.h"

namespace {

constexpr uint32_t ABI_VERSION = 4;

const napi_type_tag kBufferTag = {0x6c6f667471637564ULL, 0x6275666665723031ULL};

struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  bool freed = false;
  /** A view's allocation (the view owns nothing; the reference keeps the allocation's handle alive). */
  Buffer* parent = nullptr;
  napi_ref parentRef = nullptr;
  bool dead() const { return freed || (parent && parent->freed); }
};

struct JsError : std::runtime_error {
  explicit JsError(const std::string& m) : std::runtime_error(m) {}
};

#define NAPI(call)                                                     \
  do {                                                                 \
    if ((call) != napi_ok) throw JsError("Node-API call failed: " #call); \
  } while (0)

struct Args {
  napi_env env;
  std::vector<napi_value> v;
  Args(napi_env e, napi_callback_info info, size_t want) : env(e), v(want) {
    size_t argc = want;
    NAPI(napi_get_cb_info(e, info, &argc, v.data(), nullptr, nullptr));
    if (argc < want) throw JsError("expected " + std::to_string(want) + " arguments, got " + std::to_string(argc));
  }
  Buffer* buffer(size_t i, bool nullable = false) const {
    napi_valuetype t;
    NAPI(napi_typeof(env, v[i], &t));
    if (nullable && (t == napi_null || t == napi_undefined)) return nullptr;
    bool ok = false;
    if (t == napi_external) NAPI(napi_check_object_type_tag(env, v[i], &kBufferTag, &ok));
    if (!ok) throw JsError("argument " + std::to_string(i) + " is not a device buffer");
    void* data = nullptr;
    NAPI(napi_get_value_external(env, v[i], &data));
    auto* b = static_cast<Buffer*>(data);
    if (b->dead()) throw JsError("argument " + std::to_string(i) + " is a freed device buffer");
    return b;
  }
  int64_t integer(size_t i, int64_t min = 0, int64_t max = INT64_MAX) const {
    double d = 0;
    if (napi_get_value_double(env, v[i], &d) != napi_ok) throw JsError("argument " + std::to_string(i) + " is not a number");
    auto n = static_cast<int64_t>(d);
    if (static_cast<double>(n) != d || n < min || n > max) throw JsError("argument " + std::to_string(i) + " is out of range");
    return n;
  }
  double number(size_t i) const {
    double d = 0;
    if (napi_get_value_double(env, v[i], &d) != napi_ok) throw JsError("argument " + std::to_string(i) + " is not a number");
    return d;
  }
  bool flag(size_t i) const {
    bool b = false;
    if (napi_get_value_bool(env, v[i], &b) != napi_ok) throw JsError("argument " + std::to_string(i) + " is not a boolean");
    return b;
  }
  /** Bytes of a TypedArray argument. */
  std::pair<void*, size_t> bytes(size_t i) const {
    bool is = false;
    NAPI(napi_is_typedarray(env, v[i], &is));
    if (!is) throw JsError("argument " + std::to_string(i) + " is not a typed array");
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    napi_value ab;
    size_t offset = 0;
    NAPI(napi_get_typedarray_info(env, v[i], &type, &length, &data, &ab, &offset));
    size_t elem = 1;
    switch (type) {
      case napi_int16_array:
      case napi_uint16_array: elem = 2; break;
      case napi_int32_array:
      case napi_uint32_array:
      case napi_float32_array: elem = 4; break;
      case napi_float64_array:
      case napi_bigint64_array:
      case napi_biguint64_array: elem = 8; break;
      default: break;
    }
    return {data, length * elem};
  }
  std::vector<std::string> strings(size_t i) const {
    bool is = false;
    NAPI(napi_is_array(env, v[i], &is));
    if (!is) throw JsError("argument " + std::to_string(i) + " is not an array");
    uint32_t n = 0;
    NAPI(napi_get_array_length(env, v[i], &n));
    std::vector<std::string> out;
    for (uint32_t k = 0; k < n; k++) {
      napi_value e;
      NAPI(napi_get_element(env, v[i], k, &e));
      size_t len = 0;
      NAPI(napi_get_value_string_utf8(env, e, nullptr, 0, &len));
      std::string s(len, '\0');
      NAPI(napi_get_value_string_utf8(env, e, s.data(), len + 1, &len));
      out.push_back(s);
    }
    return out;
  }
};

void checkBytes(const Buffer* b, size_t need, const char* what) {
  if (b->bytes < need) throw JsError(std::string(what) + ": the device buffer holds " + std::to_string(b->bytes) + " bytes, " + std::to_string(need) + " needed");
}

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/** Runs a binding body, turning C++ failures into a JavaScript exception. */
napi_value guard(napi_env env, const std::function<napi_value()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
    return nullptr;
  }
}

void finalizeBuffer(napi_env env, void* data, void*) {
  auto* b = static_cast<Buffer*>(data);
  if (b->parentRef) napi_delete_reference(env, b->parentRef);
  else if (!b->freed) deviceFree(b->ptr, b->bytes);
  delete b;
}

// ---- results delivered through promises -------------------------------------------------

enum class ResultKind { Void, Bytes, Float64s, Number, NonFinite };

struct Pending {
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
  ResultKind kind = ResultKind::Void;
  Staging* staging = nullptr;
  size_t bytes = 0;
  /** Work for the worker thread; by default it waits for the staging copy. */
  std::function<void()> job;
  std::string error;
};

void executePending(napi_env, void* data) {
  auto* p = static_cast<Pending*>(data);
  try {
    CUDA_CHECK(cudaSetDevice(ctx().device));
    if (p->job) p->job();
    if (p->staging) CUDA_CHECK(cudaEventSynchronize(p->staging->done));
  } catch (const std::exception& e) {
    p->error = e.what();
  }
}

void completePending(napi_env env, napi_status, void* data) {
  auto* p = static_cast<Pending*>(data);
  napi_value result = nullptr;
  std::string error = p->error;
  if (error.empty()) {
    switch (p->kind) {
      case ResultKind::Void: result = undefined(env); break;
      case ResultKind::Bytes: {
        void* out = nullptr;
        if (napi_create_arraybuffer(env, p->bytes, &out, &result) == napi_ok) {
          if (p->bytes) std::memcpy(out, p->staging->host, p->bytes);
        } else error = "could not allocate the result buffer";
        break;
      }
      case ResultKind::Float64s: {
        void* out = nullptr;
        napi_value ab;
        if (napi_create_arraybuffer(env, p->bytes, &out, &ab) == napi_ok) {
          std::memcpy(out, p->staging->host, p->bytes);
          napi_create_typedarray(env, napi_float64_array, p->bytes / 8, ab, 0, &result);
        } else error = "could not allocate the result buffer";
        break;
      }
      case ResultKind::Number: napi_create_double(env, *static_cast<double*>(p->staging->host), &result); break;
      case ResultKind::NonFinite: {
        unsigned long long i = *static_cast<unsigned long long*>(p->staging->host);
        napi_create_double(env, i == ~0ULL ? -1.0 : static_cast<double>(i), &result);
        break;
      }
    }
  }
  if (p->staging) p->staging->held = false;
  if (!error.empty()) {
    napi_value msg, err;
    napi_create_string_utf8(env, error.c_str(), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, nullptr, msg, &err);
    napi_reject_deferred(env, p->deferred, err);
  } else {
    napi_resolve_deferred(env, p->deferred, result);
  }
  napi_delete_async_work(env, p->work);
  delete p;
}

napi_value queue(napi_env env, Pending* p) {
  napi_value promise, name;
  NAPI(napi_create_promise(env, &p->deferred, &promise));
  NAPI(napi_create_string_utf8(env, "loftq-cuda", NAPI_AUTO_LENGTH, &name));
  NAPI(napi_create_async_work(env, nullptr, name, executePending, completePending, p, &p->work));
  NAPI(napi_queue_async_work(env, p->work));
  return promise;
}

/** Copies `bytes` of device memory to a staging buffer in stream order; the promise resolves with them. */
napi_value deliver(napi_env env, const void* src, size_t bytes, ResultKind kind) {
  auto* p = new Pending();
  p->kind = kind;
  p->bytes = bytes;
  try {
    p->staging = acquireStaging(bytes);
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(p->staging->host, src, bytes, cudaMemcpyDeviceToHost, ctx().stream));
    CUDA_CHECK(cudaEventRecord(p->staging->done, ctx().stream));
  } catch (...) {
    if (p->staging) p->staging->held = false;
    delete p;
    throw;
  }
  return queue(env, p);
}

/** A temporary device allocation freed in stream order when it goes out of scope. */
struct Temp {
  void* ptr;
  size_t bytes;
  explicit Temp(size_t n) : ptr(deviceAlloc(n)), bytes(n) {}
  ~Temp() { deviceFree(ptr, bytes); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

// ---- file reads straight into the device ------------------------------------------------

constexpr size_t kReadChunk = 32u << 20;

struct ReadBuffers {
  void* host[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};
};

ReadBuffers& readBuffers() {
  static ReadBuffers r;
  if (!r.host[0]) {
    for (int i = 0; i < 2; i++) {
      CUDA_CHECK(cudaHostAlloc(&r.host[i], kReadChunk, cudaHostAllocDefault));
      CUDA_CHECK(cudaEventCreateWithFlags(&r.done[i], cudaEventDisableTiming));
    }
  }
  return r;
}

/** Reads [offset, offset + bytes) of fd into device memory at raw, two pinned chunks in flight. */
void readIntoDevice(int fd, int64_t offset, size_t bytes, uint8_t* raw) {
  Context& c = ctx();
  ReadBuffers& r = readBuffers();
  size_t done = 0;
  for (int slot = 0; done < bytes; slot ^= 1) {
    CUDA_CHECK(cudaEventSynchronize(r.done[slot]));
    const size_t len = std::min(kReadChunk, bytes - done);
    size_t got = 0;
    while (got < len) {
      ssize_t n = pread(fd, static_cast<uint8_t*>(r.host[slot]) + got, len - got, static_cast<off_t>(offset + done + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw NativeError(std::string("reading the weights failed: ") + std::strerror(errno));
      if (n == 0) {
        throw NativeError("file is truncated: a tensor needs bytes " + std::to_string(offset) + ".." + std::to_string(offset + static_cast<int64_t>(bytes)) +
                          ", the file ends at " + std::to_string(offset + static_cast<int64_t>(done + got)));
      }
      got += static_cast<size_t>(n);
    }
    CUDA_CHECK(cudaMemcpyAsync(raw + done, r.host[slot], len, cudaMemcpyHostToDevice, c.transfer));
    CUDA_CHECK(cudaEventRecord(r.done[slot], c.transfer));
    done += len;
  }
}

// ---- bindings ---------------------------------------------------------------------------

napi_value Init(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 1);
    const DeviceFacts& f = initContext(a.strings(0));
    napi_value o;
    NAPI(napi_create_object(env, &o));
    auto set = [&](const char* k, napi_value v) { NAPI(napi_set_named_property(env, o, k, v)); };
    napi_value v;
    NAPI(napi_create_string_utf8(env, f.name.c_str(), NAPI_AUTO_LENGTH, &v)); set("name", v);
    NAPI(napi_create_double(env, static_cast<double>(f.totalMemory), &v)); set("totalMemory", v);
    NAPI(napi_create_int32(env, f.multiprocessors, &v)); set("multiprocessors", v);
    std::string cc = std::to_string(f.major) + "." + std::to_string(f.minor);
    NAPI(napi_create_string_utf8(env, cc.c_str(), NAPI_AUTO_LENGTH, &v)); set("computeCapability", v);
    NAPI(napi_create_int32(env, f.driverVersion, &v)); set("driverVersion", v);
    NAPI(napi_create_int32(env, f.runtimeVersion, &v)); set("runtimeVersion", v);
    NAPI(napi_create_int32(env, f.cublasVersion, &v)); set("cublasVersion", v);
    NAPI(napi_create_string_utf8(env, f.cublasPath.c_str(), NAPI_AUTO_LENGTH, &v)); set("cublasPath", v);
    NAPI(napi_create_string_utf8(env, f.driverPath.c_str(), NAPI_AUTO_LENGTH, &v)); set("driverPath", v);
    return o;
  });
}

napi_value Alloc(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 1);
    auto bytes = static_cast<size_t>(a.integer(0, 1));
    auto* b = new Buffer();
    try {
      b->ptr = deviceAlloc(bytes);
    } catch (...) {
      delete b;
      throw;
    }
    b->bytes = bytes;
    napi_value ext;
    NAPI(napi_create_external(env, b, finalizeBuffer, nullptr, &ext));
    NAPI(napi_type_tag_object(env, ext, &kBufferTag));
    return ext;
  });
}

napi_value Free(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 1);
    Buffer* b = a.buffer(0);
    b->freed = true;
    if (!b->parent) deviceFree(b->ptr, b->bytes);
    return undefined(env);
  });
}

/** A buffer over bytes [offset, offset + bytes) of an allocation: freeing it frees nothing, and it dies with the allocation. */
napi_value View(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 3);
    Buffer* base = a.buffer(0);
    if (base->parent) throw JsError("view: the buffer is itself a view");
    auto offset = static_cast<size_t>(a.integer(1));
    auto bytes = static_cast<size_t>(a.integer(2, 1));
    if (offset > base->bytes || bytes > base->bytes - offset) throw JsError("view: bytes " + std::to_string(offset) + "+" + std::to_string(bytes) + " lie outside the buffer's " + std::to_string(base->bytes));
    auto* b = new Buffer();
    b->ptr = static_cast<char*>(base->ptr) + offset;
    b->bytes = bytes;
    b->parent = base;
    napi_value ext;
    try {
      NAPI(napi_create_reference(env, a.v[0], 1, &b->parentRef));
      NAPI(napi_create_external(env, b, finalizeBuffer, nullptr, &ext));
    } catch (...) {
      if (b->parentRef) napi_delete_reference(env, b->parentRef);
      delete b;
      throw;
    }
    NAPI(napi_type_tag_object(env, ext, &kBufferTag));
    return ext;
  });
}

napi_value Memset(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 3);
    Buffer* b = a.buffer(0);
    auto bytes = static_cast<size_t>(a.integer(2));
    checkBytes(b, bytes, "memset");
    CUDA_CHECK(cudaMemsetAsync(b->ptr, static_cast<int>(a.integer(1, 0, 255)), bytes, ctx().stream));
    return undefined(env);
  });
}

napi_value Copy(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 5);
    Buffer* dst = a.buffer(0);
    auto dOff = static_cast<size_t>(a.integer(1));
    Buffer* src = a.buffer(2);
    auto sOff = static_cast<size_t>(a.integer(3));
    auto bytes = static_cast<size_t>(a.integer(4));
    checkBytes(dst, dOff + bytes, "copy");
    checkBytes(src, sOff + bytes, "copy");
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(static_cast<uint8_t*>(dst->ptr) + dOff, static_cast<uint8_t*>(src->ptr) + sOff, bytes, cudaMemcpyDeviceToDevice, ctx().stream));
    return undefined(env);
  });
}

napi_value Copy2d(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 8);
    Buffer* dst = a.buffer(0);
    auto dPitch = static_cast<size_t>(a.integer(1));
    auto dOff = static_cast<size_t>(a.integer(2));
    Buffer* src = a.buffer(3);
    auto sPitch = static_cast<size_t>(a.integer(4));
    auto sOff = static_cast<size_t>(a.integer(5));
    auto width = static_cast<size_t>(a.integer(6));
    auto rows = static_cast<size_t>(a.integer(7));
    if (rows == 0 || width == 0) return undefined(env);
    checkBytes(dst, dOff + (rows - 1) * dPitch + width, "copy2d");
    checkBytes(src, sOff + (rows - 1) * sPitch + width, "copy2d");
    CUDA_CHECK(cudaMemcpy2DAsync(static_cast<uint8_t*>(dst->ptr) + dOff, dPitch, static_cast<uint8_t*>(src->ptr) + sOff, sPitch, width, rows,
                                 cudaMemcpyDeviceToDevice, ctx().stream));
    return undefined(env);
  });
}

napi_value Upload(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 2);
    Buffer* dst = a.buffer(0);
    auto [data, bytes] = a.bytes(1);
    checkBytes(dst, bytes, "upload");
    uploadHost(dst->ptr, data, bytes);
    return undefined(env);
  });
}

napi_value Download(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 2);
    Buffer* src = a.buffer(0);
    auto bytes = static_cast<size_t>(a.integer(1));
    checkBytes(src, bytes, "download");
    return deliver(env, src->ptr, bytes, ResultKind::Bytes);
  });
}

napi_value ReadFile(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 5);
    requireReady();
    Buffer* dst = a.buffer(0);
    const int fd = static_cast<int>(a.integer(1, 0, INT32_MAX));
    const int64_t offset = a.integer(2);
    const int dtype = static_cast<int>(a.integer(3, 0, 3));
    const int64_t count = a.integer(4);
    checkBytes(dst, static_cast<size_t>(count) * 4, "readFile");
    Context& c = ctx();
    // The destination was allocated on the compute stream: the transfer stream waits for that.
    cudaEvent_t allocated;
    CUDA_CHECK(cudaEventCreateWithFlags(&allocated, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(allocated, c.stream));
    auto* p = new Pending();
    void* out = dst->ptr;
    p->job = [fd, offset, dtype, count, out, allocated] {
      Context& c = ctx();
      struct EventGuard {
        cudaEvent_t e;
        ~EventGuard() { cudaEventDestroy(e); }
      } guardEvent{allocated};
      CUDA_CHECK(cudaStreamWaitEvent(c.transfer, allocated, 0));
      const size_t bytes = static_cast<size_t>(count) * dtypeBytes(dtype);
      void* raw = nullptr;
      try {
        if (dtype == kF32) {
          readIntoDevice(fd, offset, bytes, static_cast<uint8_t*>(out));
        } else {
          CUDA_CHECK(cudaMallocAsync(&raw, bytes, c.transfer));
          accountBytes(static_cast<int64_t>(bytes));
          readIntoDevice(fd, offset, bytes, static_cast<uint8_t*>(raw));
          launchConvert(static_cast<float*>(out), raw, dtype, count, c.transfer);
          CUDA_CHECK(cudaFreeAsync(raw, c.transfer));
          accountBytes(-static_cast<int64_t>(bytes));
          raw = nullptr;
        }
        CUDA_CHECK(cudaStreamSynchronize(c.transfer));
      } catch (...) {
        // Copies already enqueued must land before the caller frees the destination.
        if (raw) {
          cudaFreeAsync(raw, c.transfer);
          accountBytes(-static_cast<int64_t>(bytes));
        }
        cudaStreamSynchronize(c.transfer);
        throw;
      }
    };
    return queue(env, p);
  });
}

napi_value Convert(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    Buffer* dst = a.buffer(0);
    Buffer* src = a.buffer(1);
    const int dtype = static_cast<int>(a.integer(2, 0, 3));
    const int64_t count = a.integer(3);
    checkBytes(dst, static_cast<size_t>(count) * 4, "convert");
    checkBytes(src, static_cast<size_t>(count) * dtypeBytes(dtype), "convert");
    launchConvert(static_cast<float*>(dst->ptr), src->ptr, dtype, count, ctx().stream);
    return undefined(env);
  });
}

napi_value RandomNormal(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 3);
    Buffer* dst = a.buffer(0);
    const int64_t count = a.integer(1);
    checkBytes(dst, static_cast<size_t>(count) * 4, "randomNormal");
    launchRandomNormal(static_cast<float*>(dst->ptr), count, static_cast<uint32_t>(a.integer(2, 0, UINT32_MAX)), ctx().stream);
    return undefined(env);
  });
}

napi_value Gemm(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 11);
    Buffer* c = a.buffer(0);
    Buffer* A = a.buffer(1);
    Buffer* B = a.buffer(2);
    const int64_t m = a.integer(3), n = a.integer(4), k = a.integer(5);
    checkBytes(c, static_cast<size_t>(m * n) * 4, "gemm C");
    checkBytes(A, static_cast<size_t>(m * k) * 4, "gemm A");
    checkBytes(B, static_cast<size_t>(k * n) * 4, "gemm B");
    gemm(static_cast<float*>(c->ptr), static_cast<const float*>(A->ptr), static_cast<const float*>(B->ptr), m, n, k, a.flag(6), a.flag(7), a.flag(8),
         static_cast<float>(a.number(9)), static_cast<float>(a.number(10)));
    return undefined(env);
  });
}

napi_value Gram(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 3);
    Buffer* A = a.buffer(0);
    const int64_t rows = a.integer(1), cols = a.integer(2, 1);
    checkBytes(A, static_cast<size_t>(rows * cols) * 4, "gram");
    Temp g(static_cast<size_t>(cols * cols) * sizeof(double));
    gram(g.as<double>(), static_cast<const float*>(A->ptr), rows, cols);
    return deliver(env, g.ptr, g.bytes, ResultKind::Float64s);
  });
}

napi_value CholQr(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 5);
    Buffer* dst = a.buffer(0);
    Buffer* src = a.buffer(1);
    const int64_t rows = a.integer(2, 1), cols = a.integer(3, 1, 4096);
    const int passes = static_cast<int>(a.integer(4, 1, 8));
    if (dst == src) throw JsError("cholQr: dst and src must differ");
    checkBytes(dst, static_cast<size_t>(rows * cols) * 4, "cholQr dst");
    checkBytes(src, static_cast<size_t>(rows * cols) * 4, "cholQr src");
    Temp flags(static_cast<size_t>(passes) * sizeof(int));
    choleskyQrPasses(static_cast<float*>(dst->ptr), static_cast<const float*>(src->ptr), rows, cols, passes, flags.as<int>());
    return deliver(env, flags.ptr, flags.bytes, ResultKind::Bytes);
  });
}

napi_value SumSquares(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 2);
    Buffer* x = a.buffer(0);
    const int64_t count = a.integer(1);
    checkBytes(x, static_cast<size_t>(count) * 4, "sumSquares");
    Temp partials(kReduceBlocks * sizeof(double));
    Temp out(sizeof(double));
    launchSumSquares(out.as<double>(), partials.as<double>(), static_cast<const float*>(x->ptr), count, ctx().stream);
    return deliver(env, out.ptr, sizeof(double), ResultKind::Number);
  });
}

napi_value ScaleColumns(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 5);
    Buffer* out = a.buffer(0);
    Buffer* in = a.buffer(1);
    const int64_t rows = a.integer(2), cols = a.integer(3);
    auto [data, bytes] = a.bytes(4);
    if (bytes != static_cast<size_t>(cols) * 4) throw JsError("scaleColumns: one float32 factor per column needed");
    checkBytes(out, static_cast<size_t>(rows * cols) * 4, "scaleColumns");
    checkBytes(in, static_cast<size_t>(rows * cols) * 4, "scaleColumns");
    Temp factors(bytes ? bytes : 4);
    uploadHost(factors.ptr, data, bytes);
    launchScaleColumns(static_cast<float*>(out->ptr), static_cast<const float*>(in->ptr), factors.as<float>(), rows, cols, ctx().stream);
    return undefined(env);
  });
}

napi_value Transpose(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    Buffer* out = a.buffer(0);
    Buffer* in = a.buffer(1);
    const int64_t rows = a.integer(2), cols = a.integer(3);
    checkBytes(out, static_cast<size_t>(rows * cols) * 4, "transpose");
    checkBytes(in, static_cast<size_t>(rows * cols) * 4, "transpose");
    launchTranspose(static_cast<float*>(out->ptr), static_cast<const float*>(in->ptr), rows, cols, ctx().stream);
    return undefined(env);
  });
}

napi_value FindNonFinite(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 2);
    Buffer* x = a.buffer(0);
    const int64_t count = a.integer(1);
    checkBytes(x, static_cast<size_t>(count) * 4, "findNonFinite");
    Temp out(sizeof(unsigned long long));
    CUDA_CHECK(cudaMemsetAsync(out.ptr, 0xff, sizeof(unsigned long long), ctx().stream));
    launchFindNonFinite(out.as<unsigned long long>(), static_cast<const float*>(x->ptr), count, ctx().stream);
    return deliver(env, out.ptr, sizeof(unsigned long long), ResultKind::NonFinite);
  });
}

void checkQuant(Buffer* codes, Buffer* absmax, Buffer* levels, int64_t count, int64_t blockSize, int64_t levelCount, const char* what) {
  checkBytes(codes, static_cast<size_t>(count), what);
  checkBytes(absmax, static_cast<size_t>((count + blockSize - 1) / blockSize) * 4, what);
  checkBytes(levels, static_cast<size_t>(levelCount) * 4, what);
}

napi_value Quantize(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 12);
    QuantizeArgs q{};
    Buffer* x = a.buffer(0);
    Buffer* ref = a.buffer(1);
    Buffer* codes = a.buffer(2);
    Buffer* absmax = a.buffer(3);
    q.count = a.integer(4);
    q.blockSize = a.integer(5, 1);
    Buffer* levels = a.buffer(6);
    q.levelCount = static_cast<int>(a.integer(7, 2, 256));
    Buffer* diff = a.buffer(8, true);
    Buffer* prevCodes = a.buffer(9, true);
    Buffer* prevAbsmax = a.buffer(10, true);
    q.rule = static_cast<int>(a.integer(11, 0, 2));
    if (q.rule != 0 && q.levelCount != (q.rule == 1 ? 256 : 16)) throw JsError("quantize: the q8_0/q4_0 rules need 256/16 integer levels");
    checkBytes(x, static_cast<size_t>(q.count) * 4, "quantize x");
    checkBytes(ref, static_cast<size_t>(q.count) * 4, "quantize ref");
    checkQuant(codes, absmax, levels, q.count, q.blockSize, q.levelCount, "quantize");
    if (diff) checkBytes(diff, static_cast<size_t>(q.count) * 4, "quantize diff");
    if ((prevCodes == nullptr) != (prevAbsmax == nullptr)) throw JsError("quantize: previous codes and absmax go together");
    if (prevCodes) checkQuant(prevCodes, prevAbsmax, levels, q.count, q.blockSize, q.levelCount, "quantize previous");
    q.x = static_cast<const float*>(x->ptr);
    q.ref = static_cast<const float*>(ref->ptr);
    q.codes = static_cast<uint8_t*>(codes->ptr);
    q.absmax = static_cast<float*>(absmax->ptr);
    q.diff = diff ? static_cast<float*>(diff->ptr) : nullptr;
    q.prevCodes = prevCodes ? static_cast<const uint8_t*>(prevCodes->ptr) : nullptr;
    q.prevAbsmax = prevAbsmax ? static_cast<const float*>(prevAbsmax->ptr) : nullptr;
    q.levels = static_cast<const float*>(levels->ptr);
    Temp partials(static_cast<size_t>(2 * quantizeGrid(q.count, q.blockSize)) * sizeof(double));
    Temp out(2 * sizeof(double));
    launchQuantize(q, out.as<double>(), partials.as<double>(), ctx().stream);
    return deliver(env, out.ptr, 2 * sizeof(double), ResultKind::Float64s);
  });
}

napi_value QuantError(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    Buffer* x = a.buffer(0);
    Buffer* codes = a.buffer(1);
    Buffer* absmax = a.buffer(2);
    const int64_t count = a.integer(3), blockSize = a.integer(4, 1);
    Buffer* levels = a.buffer(5);
    const int levelCount = static_cast<int>(a.integer(6, 2, 256));
    checkBytes(x, static_cast<size_t>(count) * 4, "quantError x");
    checkQuant(codes, absmax, levels, count, blockSize, levelCount, "quantError");
    Temp partials(static_cast<size_t>(quantizeGrid(count, blockSize)) * sizeof(double));
    Temp out(sizeof(double));
    launchQuantError(out.as<double>(), partials.as<double>(), static_cast<const float*>(x->ptr), static_cast<const uint8_t*>(codes->ptr),
                     static_cast<const float*>(absmax->ptr), static_cast<const float*>(levels->ptr), levelCount, count, blockSize, ctx().stream);
    return deliver(env, out.ptr, sizeof(double), ResultKind::Number);
  });
}

napi_value Dequantize(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    Buffer* out = a.buffer(0);
    Buffer* codes = a.buffer(1);
    Buffer* absmax = a.buffer(2);
    const int64_t count = a.integer(3), blockSize = a.integer(4, 1);
    Buffer* levels = a.buffer(5);
    const int levelCount = static_cast<int>(a.integer(6, 2, 256));
    checkBytes(out, static_cast<size_t>(count) * 4, "dequantize out");
    checkQuant(codes, absmax, levels, count, blockSize, levelCount, "dequantize");
    launchDequantize(static_cast<float*>(out->ptr), static_cast<const uint8_t*>(codes->ptr), static_cast<const float*>(absmax->ptr),
                     static_cast<const float*>(levels->ptr), levelCount, count, blockSize, ctx().stream);
    return undefined(env);
  });
}

napi_value Pack(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    Buffer* out = a.buffer(0);
    Buffer* codes = a.buffer(1);
    const int64_t count = a.integer(2);
    const int bits = static_cast<int>(a.integer(3, 1, 8));
    checkBytes(out, static_cast<size_t>((count * bits + 7) / 8), "pack out");
    checkBytes(codes, static_cast<size_t>(count), "pack codes");
    launchPack(static_cast<uint8_t*>(out->ptr), static_cast<const uint8_t*>(codes->ptr), count, bits, ctx().stream);
    return undefined(env);
  });
}

napi_value Unpack(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    Buffer* codes = a.buffer(0);
    Buffer* packed = a.buffer(1);
    const int64_t count = a.integer(2);
    const int bits = static_cast<int>(a.integer(3, 1, 8));
    checkBytes(codes, static_cast<size_t>(count), "unpack codes");
    checkBytes(packed, static_cast<size_t>((count * bits + 7) / 8), "unpack packed");
    launchUnpack(static_cast<uint8_t*>(codes->ptr), static_cast<const uint8_t*>(packed->ptr), count, bits, ctx().stream);
    return undefined(env);
  });
}

napi_value Memory(napi_env env, napi_callback_info) {
  return guard(env, [&] {
    requireReady();
    size_t free = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free, &total));
    napi_value o, v;
    NAPI(napi_create_object(env, &o));
    NAPI(napi_create_double(env, static_cast<double>(ctx().inUse.load()), &v));
    NAPI(napi_set_named_property(env, o, "inUse", v));
    NAPI(napi_create_double(env, static_cast<double>(ctx().peak.load()), &v));
    NAPI(napi_set_named_property(env, o, "peak", v));
    NAPI(napi_create_double(env, static_cast<double>(free), &v));
    NAPI(napi_set_named_property(env, o, "free", v));
    NAPI(napi_create_double(env, static_cast<double>(total), &v));
    NAPI(napi_set_named_property(env, o, "total", v));
    return o;
  });
}

/** Starts a new peak: the peak becomes what is in use now (one job's peak, not the process's). */
napi_value ResetPeak(napi_env env, napi_callback_info) {
  return guard(env, [&] {
    requireReady();
    ctx().peak.store(ctx().inUse.load());
    return undefined(env);
  });
}

napi_value Synchronize(napi_env env, napi_callback_info) {
  return guard(env, [&] {
    requireReady();
    auto* p = new Pending();
    p->job = [] { CUDA_CHECK(cudaStreamSynchronize(ctx().stream)); };
    return queue(env, p);
  });
}

// ---- the transformer's kernels (native/src/nn.h) ------------------------------------------

/** Bytes of an activation of `count` elements of type t (float32 or bfloat16). */
size_t actBytes(int64_t count, int t) {
  if (t != kF32 && t != kBF16) throw JsError("activations are float32 (0) or bfloat16 (2)");
  return static_cast<size_t>(count) * dtypeBytes(t);
}

template <typename T>
T* at(Buffer* b) {
  return static_cast<T*>(b->ptr);
}

napi_value GemmTyped(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 20);
    Buffer* c = a.buffer(0);
    TypedGemm g{};
    g.cType = static_cast<int>(a.integer(1, 0, 3));
    Buffer* A = a.buffer(2);
    Buffer* B = a.buffer(3);
    g.abType = static_cast<int>(a.integer(4, 0, 3));
    g.m = a.integer(5);
    g.n = a.integer(6);
    g.k = a.integer(7);
    g.transA = a.flag(8);
    g.transB = a.flag(9);
    g.tf32 = a.flag(10);
    g.alpha = static_cast<float>(a.number(11));
    g.beta = static_cast<float>(a.number(12));
    g.batch = a.integer(13, 1, INT32_MAX);
    g.strideA = a.integer(14);
    g.strideB = a.integer(15);
    g.strideC = a.integer(16);
    const int64_t offA = a.integer(17), offB = a.integer(18), offC = a.integer(19);
    // The last element each operand touches: its offset, batch − 1 strides, one matrix.
    auto need = [&](int64_t off, int64_t stride, int64_t elems, int t) { return actBytes(off + (g.batch - 1) * stride + elems, t); };
    checkBytes(A, need(offA, g.strideA, g.m * g.k, g.abType), "gemmTyped A");
    checkBytes(B, need(offB, g.strideB, g.k * g.n, g.abType), "gemmTyped B");
    checkBytes(c, need(offC, g.strideC, g.m * g.n, g.cType), "gemmTyped C");
    g.a = static_cast<const uint8_t*>(A->ptr) + actBytes(offA, g.abType);
    g.b = static_cast<const uint8_t*>(B->ptr) + actBytes(offB, g.abType);
    g.c = static_cast<uint8_t*>(c->ptr) + actBytes(offC, g.cType);
    gemmTyped(g);
    return undefined(env);
  });
}

napi_value EmbedRows(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    Buffer* out = a.buffer(0);
    Buffer* table = a.buffer(1);
    const int type = static_cast<int>(a.integer(2, 0, 3));
    Buffer* ids = a.buffer(3);
    const int64_t rows = a.integer(4), hidden = a.integer(5), vocab = a.integer(6, 1);
    checkBytes(out, actBytes(rows * hidden, kF32), "embedRows out");
    checkBytes(table, actBytes(vocab * hidden, type), "embedRows table");
    checkBytes(ids, static_cast<size_t>(rows) * 4, "embedRows ids");
    launchEmbedRows(at<float>(out), table->ptr, type, at<int32_t>(ids), rows, hidden, ctx().stream);
    return undefined(env);
  });
}

napi_value RmsNorm(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    Buffer* out = a.buffer(0);
    const int type = static_cast<int>(a.integer(1, 0, 3));
    Buffer* x = a.buffer(2);
    Buffer* w = a.buffer(3);
    const int64_t rows = a.integer(4), hidden = a.integer(5, 1);
    checkBytes(out, actBytes(rows * hidden, type), "rmsNorm out");
    checkBytes(x, actBytes(rows * hidden, kF32), "rmsNorm x");
    checkBytes(w, actBytes(hidden, kF32), "rmsNorm weight");
    launchRmsNorm(out->ptr, type, at<float>(x), at<float>(w), rows, hidden, static_cast<float>(a.number(6)), ctx().stream);
    return undefined(env);
  });
}

napi_value DequantPacked(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 9);
    Buffer* out = a.buffer(0);
    const int type = static_cast<int>(a.integer(1, 0, 3));
    Buffer* packed = a.buffer(2);
    Buffer* absmax = a.buffer(3);
    Buffer* levels = a.buffer(4);
    const int levelCount = static_cast<int>(a.integer(5, 2, 256));
    const int64_t count = a.integer(6);
    const int bits = static_cast<int>(a.integer(7, 1, 8));
    const int64_t blockSize = a.integer(8, 1);
    if (levelCount > (1 << bits)) throw JsError("dequantPacked: more levels than the bits can address");
    checkBytes(out, actBytes(count, type), "dequantPacked out");
    checkBytes(packed, static_cast<size_t>((count * bits + 7) / 8), "dequantPacked codes");
    checkBytes(absmax, static_cast<size_t>((count + blockSize - 1) / blockSize) * 4, "dequantPacked absmax");
    checkBytes(levels, static_cast<size_t>(levelCount) * 4, "dequantPacked levels");
    // Every code must name a level: with fewer levels than 2^bits the codes were checked on upload.
    launchDequantPacked(out->ptr, type, at<uint8_t>(packed), at<float>(absmax), at<float>(levels), levelCount, count, bits, blockSize, ctx().stream);
    return undefined(env);
  });
}

napi_value Cast(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    Buffer* out = a.buffer(0);
    const int type = static_cast<int>(a.integer(1, 0, 3));
    Buffer* in = a.buffer(2);
    const int64_t count = a.integer(3);
    checkBytes(out, actBytes(count, type), "cast out");
    checkBytes(in, actBytes(count, kF32), "cast in");
    launchCast(out->ptr, type, at<float>(in), count, ctx().stream);
    return undefined(env);
  });
}

napi_value RopeHeads(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 13);
    Buffer* out = a.buffer(0);
    const int type = static_cast<int>(a.integer(1, 0, 3));
    Buffer* in = a.buffer(2);
    RopeArgs r{};
    r.inType = static_cast<int>(a.integer(3, 0, 3));
    r.inStride = a.integer(4, 1);
    r.colOffset = a.integer(5);
    r.batch = a.integer(6);
    r.seq = a.integer(7);
    r.heads = a.integer(8);
    r.headDim = a.integer(9, 2);
    r.repeat = a.integer(10, 1);
    Buffer* cos = a.buffer(11, true);
    Buffer* sin = a.buffer(12, true);
    if ((cos == nullptr) != (sin == nullptr)) throw JsError("ropeHeads: cos and sin go together");
    if (r.headDim % 2) throw JsError("ropeHeads: the head dimension must be even");
    if (r.colOffset + r.heads * r.headDim > r.inStride) throw JsError("ropeHeads: the heads run past the input's row");
    checkBytes(out, actBytes(r.batch * r.seq * r.heads * r.repeat * r.headDim, type), "ropeHeads out");
    checkBytes(in, actBytes(r.batch * r.seq * r.inStride, r.inType), "ropeHeads in");
    if (cos) {
      checkBytes(cos, actBytes(r.seq * r.headDim, kF32), "ropeHeads cos");
      checkBytes(sin, actBytes(r.seq * r.headDim, kF32), "ropeHeads sin");
    }
    r.in = in->ptr;
    r.cos = cos ? at<float>(cos) : nullptr;
    r.sin = sin ? at<float>(sin) : nullptr;
    launchRopeHeads(out->ptr, type, r, ctx().stream);
    return undefined(env);
  });
}

napi_value CausalSoftmax(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 8);
    Buffer* p = a.buffer(0);
    const int type = static_cast<int>(a.integer(1, 0, 3));
    Buffer* scores = a.buffer(2);
    const int64_t batch = a.integer(3), rows = a.integer(4), keys = a.integer(5, 1), q0 = a.integer(6), window = a.integer(7);
    if (q0 + rows > keys) throw JsError("causalSoftmax: every query needs its own key (q0 + rows ≤ keys)");
    checkBytes(p, actBytes(batch * rows * keys, type), "causalSoftmax out");
    checkBytes(scores, actBytes(batch * rows * keys, kF32), "causalSoftmax scores");
    launchCausalSoftmax(p->ptr, type, at<float>(scores), batch, rows, keys, q0, window, ctx().stream);
    return undefined(env);
  });
}

napi_value FlashAttention(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 11);
    Buffer* out = a.buffer(0);
    Buffer* q = a.buffer(1);
    Buffer* k = a.buffer(2);
    Buffer* v = a.buffer(3);
    const int64_t batch = a.integer(4), seq = a.integer(5), heads = a.integer(6, 1), group = a.integer(7, 1), headDim = a.integer(8, 1);
    const int64_t window = a.integer(9);
    const float scale = static_cast<float>(a.number(10));
    if (heads % group) throw JsError("flashAttention: the heads must split into groups");
    if (!flashAttentionSupports(headDim)) throw JsError("flashAttention: head dimension not built");
    checkBytes(out, actBytes(batch * seq * heads * headDim, kBF16), "flashAttention out");
    checkBytes(q, actBytes(batch * seq * heads * headDim, kBF16), "flashAttention q");
    checkBytes(k, actBytes(batch * seq * (heads / group) * headDim, kBF16), "flashAttention k");
    checkBytes(v, actBytes(batch * seq * (heads / group) * headDim, kBF16), "flashAttention v");
    launchFlashAttention(out->ptr, q->ptr, k->ptr, v->ptr, batch, seq, heads, group, headDim, window, scale, ctx().stream);
    return undefined(env);
  });
}

napi_value MergeHeads(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    Buffer* out = a.buffer(0);
    const int type = static_cast<int>(a.integer(1, 0, 3));
    Buffer* o = a.buffer(2);
    const int64_t batch = a.integer(3), heads = a.integer(4), seq = a.integer(5), headDim = a.integer(6);
    checkBytes(out, actBytes(batch * heads * seq * headDim, type), "mergeHeads out");
    checkBytes(o, actBytes(batch * heads * seq * headDim, kF32), "mergeHeads in");
    launchMergeHeads(out->ptr, type, at<float>(o), batch, heads, seq, headDim, ctx().stream);
    return undefined(env);
  });
}

napi_value Swiglu(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 6);
    Buffer* out = a.buffer(0);
    const int type = static_cast<int>(a.integer(1, 0, 3));
    Buffer* gate = a.buffer(2);
    Buffer* up = a.buffer(3);
    const int inType = static_cast<int>(a.integer(4, 0, 3));
    const int64_t count = a.integer(5);
    checkBytes(out, actBytes(count, type), "swiglu out");
    checkBytes(gate, actBytes(count, inType), "swiglu gate");
    checkBytes(up, actBytes(count, inType), "swiglu up");
    launchSwiglu(out->ptr, type, gate->ptr, up->ptr, inType, count, ctx().stream);
    return undefined(env);
  });
}

napi_value AddBias(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    Buffer* y = a.buffer(0);
    Buffer* bias = a.buffer(1);
    const int64_t rows = a.integer(2), cols = a.integer(3);
    checkBytes(y, actBytes(rows * cols, kF32), "addBias y");
    checkBytes(bias, actBytes(cols, kF32), "addBias bias");
    launchAddBias(at<float>(y), at<float>(bias), rows, cols, ctx().stream);
    return undefined(env);
  });
}

napi_value AddInto(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 3);
    Buffer* y = a.buffer(0);
    Buffer* x = a.buffer(1);
    const int64_t count = a.integer(2);
    checkBytes(y, actBytes(count, kF32), "addInto y");
    checkBytes(x, actBytes(count, kF32), "addInto x");
    launchAddInto(at<float>(y), at<float>(x), count, ctx().stream);
    return undefined(env);
  });
}

napi_value RowNll(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 5);
    Buffer* nll = a.buffer(0);
    Buffer* logits = a.buffer(1);
    Buffer* targets = a.buffer(2);
    const int64_t rows = a.integer(3), vocab = a.integer(4, 1);
    checkBytes(nll, actBytes(rows, kF32), "rowNll out");
    checkBytes(logits, actBytes(rows * vocab, kF32), "rowNll logits");
    checkBytes(targets, static_cast<size_t>(rows) * 4, "rowNll targets");
    launchRowNll(at<float>(nll), at<float>(logits), at<int32_t>(targets), rows, vocab, ctx().stream);
    return undefined(env);
  });
}

// ---- backward kernels (native/src/nn-backward.cu) -----------------------------------------

napi_value RmsNormBackward(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    Buffer* dx = a.buffer(0);
    Buffer* dn = a.buffer(1);
    Buffer* x = a.buffer(2);
    Buffer* w = a.buffer(3);
    const int64_t rows = a.integer(4), hidden = a.integer(5, 1);
    for (Buffer* t : {dx, dn, x}) checkBytes(t, actBytes(rows * hidden, kF32), "rmsNormBackward");
    checkBytes(w, actBytes(hidden, kF32), "rmsNormBackward weight");
    launchRmsNormBackward(at<float>(dx), at<float>(dn), at<float>(x), at<float>(w), rows, hidden, static_cast<float>(a.number(6)), ctx().stream);
    return undefined(env);
  });
}

napi_value RopeHeadsBackward(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 9);
    Buffer* out = a.buffer(0);
    Buffer* d = a.buffer(1);
    const int64_t batch = a.integer(2), seq = a.integer(3), heads = a.integer(4), hd = a.integer(5, 2), repeat = a.integer(6, 1);
    Buffer* cos = a.buffer(7, true);
    Buffer* sin = a.buffer(8, true);
    if ((cos == nullptr) != (sin == nullptr)) throw JsError("ropeHeadsBackward: cos and sin go together");
    checkBytes(out, actBytes(batch * seq * heads * hd, kF32), "ropeHeadsBackward out");
    checkBytes(d, actBytes(batch * seq * heads * repeat * hd, kF32), "ropeHeadsBackward in");
    if (cos) {
      checkBytes(cos, actBytes(seq * hd, kF32), "ropeHeadsBackward cos");
      checkBytes(sin, actBytes(seq * hd, kF32), "ropeHeadsBackward sin");
    }
    launchRopeHeadsBackward(at<float>(out), at<float>(d), batch, seq, heads, hd, repeat, cos ? at<float>(cos) : nullptr, sin ? at<float>(sin) : nullptr,
                            ctx().stream);
    return undefined(env);
  });
}

napi_value SoftmaxBackward(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 6);
    Buffer* ds = a.buffer(0);
    const int type = static_cast<int>(a.integer(1, 0, 3));
    Buffer* p = a.buffer(2);
    Buffer* dp = a.buffer(3);
    const int64_t rows = a.integer(4), keys = a.integer(5, 1);
    checkBytes(ds, actBytes(rows * keys, type), "softmaxBackward out");
    checkBytes(p, actBytes(rows * keys, kF32), "softmaxBackward p");
    checkBytes(dp, actBytes(rows * keys, kF32), "softmaxBackward dp");
    launchSoftmaxBackward(ds->ptr, type, at<float>(p), at<float>(dp), rows, keys, ctx().stream);
    return undefined(env);
  });
}

napi_value SwigluBackward(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    Buffer* dgate = a.buffer(0);
    Buffer* dup = a.buffer(1);
    Buffer* da = a.buffer(2);
    Buffer* gate = a.buffer(3);
    Buffer* up = a.buffer(4);
    const int inType = static_cast<int>(a.integer(5, 0, 3));
    const int64_t count = a.integer(6);
    for (Buffer* t : {dgate, dup, da}) checkBytes(t, actBytes(count, kF32), "swigluBackward");
    checkBytes(gate, actBytes(count, inType), "swigluBackward gate");
    checkBytes(up, actBytes(count, inType), "swigluBackward up");
    launchSwigluBackward(at<float>(dgate), at<float>(dup), at<float>(da), gate->ptr, up->ptr, inType, count, ctx().stream);
    return undefined(env);
  });
}

napi_value CrossEntropyBackward(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 8);
    Buffer* dz = a.buffer(0);
    const int type = static_cast<int>(a.integer(1, 0, 3));
    Buffer* loss = a.buffer(2);
    Buffer* logits = a.buffer(3);
    Buffer* targets = a.buffer(4);
    Buffer* c = a.buffer(5);
    const int64_t rows = a.integer(6), vocab = a.integer(7, 1);
    checkBytes(dz, actBytes(rows * vocab, type), "crossEntropyBackward out");
    checkBytes(logits, actBytes(rows * vocab, kF32), "crossEntropyBackward logits");
    checkBytes(loss, actBytes(rows, kF32), "crossEntropyBackward loss");
    checkBytes(targets, static_cast<size_t>(rows) * 4, "crossEntropyBackward targets");
    checkBytes(c, actBytes(rows, kF32), "crossEntropyBackward weights");
    launchCrossEntropyBackward(dz->ptr, type, at<float>(loss), at<float>(logits), at<int32_t>(targets), at<float>(c), rows, vocab, ctx().stream);
    return undefined(env);
  });
}

// ---- the optimizer (native/src/optimizer.h) ------------------------------------------------

napi_value AdamW(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 16);
    Buffer* p = a.buffer(0);
    Buffer* g = a.buffer(1);
    Buffer* m = a.buffer(2);
    Buffer* v = a.buffer(3);
    const int64_t offset = a.integer(4);
    const int64_t count = a.integer(5);
    for (Buffer* b : {p, g, m, v}) checkBytes(b, static_cast<size_t>(offset + count) * 4, "adamw");
    AdamWConstants c{a.number(6), a.number(7), a.number(8), a.number(9), a.number(10), a.number(11), a.number(12), a.number(13), a.number(14), a.number(15)};
    if (!(c.divisor >= 1)) throw JsError("adamw: the divisor must be at least 1");
    launchAdamW(at<float>(p) + offset, at<float>(g) + offset, at<float>(m) + offset, at<float>(v) + offset, count, c, ctx().stream);
    return undefined(env);
  });
}

// ---- profiling: timing events on the compute stream (bench/, never the app) --------------

std::vector<cudaEvent_t>& profileEvents() {
  static std::vector<cudaEvent_t> events;
  return events;
}

napi_value ProfileMark(napi_env env, napi_callback_info) {
  return guard(env, [&] {
    requireReady();
    cudaEvent_t e;
    CUDA_CHECK(cudaEventCreate(&e));
    profileEvents().push_back(e);
    CUDA_CHECK(cudaEventRecord(e, ctx().stream));
    return undefined(env);
  });
}

/** Waits for the last mark; milliseconds between consecutive marks (one fewer than the marks), and the marks are forgotten. */
napi_value ProfileCollect(napi_env env, napi_callback_info) {
  return guard(env, [&] {
    requireReady();
    auto& events = profileEvents();
    std::vector<double> ms(events.size() > 1 ? events.size() - 1 : 0);
    try {
      if (!events.empty()) CUDA_CHECK(cudaEventSynchronize(events.back()));
      for (size_t i = 0; i < ms.size(); i++) {
        float t = 0;
        CUDA_CHECK(cudaEventElapsedTime(&t, events[i], events[i + 1]));
        ms[i] = t;
      }
    } catch (...) {
      for (auto e : events) cudaEventDestroy(e);
      events.clear();
      throw;
    }
    for (auto e : events) cudaEventDestroy(e);
    events.clear();
    void* data = nullptr;
    napi_value ab, out;
    NAPI(napi_create_arraybuffer(env, ms.size() * 8, &data, &ab));
    if (!ms.empty()) std::memcpy(data, ms.data(), ms.size() * 8);
    NAPI(napi_create_typedarray(env, napi_float64_array, ms.size(), ab, 0, &out));
    return out;
  });
}

void cleanup(void*) { ctx().closing.store(true); }

}  // namespace

NAPI_MODULE_INIT() {
  // Once per process: the addon holds one CUDA context whatever loads it.
  static bool hooked = false;
  if (!hooked) {
    hooked = true;
    napi_add_env_cleanup_hook(env, cleanup, nullptr);
  }
  struct Fn {
    const char* name;
    napi_callback cb;
  };
  const Fn fns[] = {
      {"init", Init},           {"alloc", Alloc},         {"free", Free},
      {"memset", Memset},       {"copy", Copy},           {"copy2d", Copy2d},
      {"upload", Upload},       {"download", Download},   {"readFile", ReadFile},
      {"convert", Convert},     {"randomNormal", RandomNormal}, {"gemm", Gemm},
      {"gram", Gram},           {"cholQr", CholQr},       {"sumSquares", SumSquares}, {"scaleColumns", ScaleColumns},
      {"transpose", Transpose}, {"findNonFinite", FindNonFinite}, {"quantize", Quantize},
      {"quantError", QuantError}, {"dequantize", Dequantize}, {"pack", Pack},
      {"unpack", Unpack},       {"memory", Memory},       {"synchronize", Synchronize},
      {"gemmTyped", GemmTyped}, {"embedRows", EmbedRows}, {"rmsNorm", RmsNorm},
      {"dequantPacked", DequantPacked}, {"cast", Cast},   {"ropeHeads", RopeHeads},
      {"causalSoftmax", CausalSoftmax}, {"mergeHeads", MergeHeads}, {"swiglu", Swiglu},
      {"addBias", AddBias},     {"addInto", AddInto},     {"rowNll", RowNll},
      {"resetPeak", ResetPeak}, {"flashAttention", FlashAttention},
      {"rmsNormBackward", RmsNormBackward}, {"ropeHeadsBackward", RopeHeadsBackward}, {"softmaxBackward", SoftmaxBackward},
      {"swigluBackward", SwigluBackward}, {"crossEntropyBackward", CrossEntropyBackward},
      {"view", View},           {"adamw", AdamW},         {"profileMark", ProfileMark}, {"profileCollect", ProfileCollect},
  };
  for (const Fn& f : fns) {
    napi_value fn;
    if (napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn) != napi_ok) return nullptr;
    if (napi_set_named_property(env, exports, f.name, fn) != napi_ok) return nullptr;
  }
  napi_value abi;
  napi_create_uint32(env, ABI_VERSION, &abi);
  napi_set_named_property(env, exports, "abiVersion", abi);
  return exports;
}
