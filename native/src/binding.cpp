#include "binding.h"

#include <cmath>
#include <cstring>

#include "check.h"
#include "context.h"

namespace {

const napi_type_tag kBufferTag = {0x6c6f667471637564ULL, 0x6275666665723031ULL};

void finalizeBuffer(napi_env env, void* data, void*) {
  auto* b = static_cast<Buffer*>(data);
  if (b->parentRef) napi_delete_reference(env, b->parentRef);
  else if (!b->freed) deviceFree(b->ptr, b->bytes);
  delete b;
}

napi_valuetype typeOf(napi_env env, napi_value v) {
  napi_valuetype t;
  NAPI(napi_typeof(env, v, &t));
  return t;
}

// ---- promises -------------------------------------------------------------------------

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

}  // namespace

// ---- arguments -------------------------------------------------------------------------

Arguments::Arguments(napi_env env, napi_callback_info info, size_t want, const char* fn) : values_(want) {
  size_t argc = want;
  NAPI(napi_get_cb_info(env, info, &argc, values_.data(), nullptr, nullptr));
  if (argc < want) throw JsError(std::string(fn) + ": expected " + std::to_string(want) + " arguments, got " + std::to_string(argc));
}

Buffer* readNullableBuffer(napi_env env, napi_value v, const char* what) {
  const napi_valuetype t = typeOf(env, v);
  if (t == napi_null || t == napi_undefined) return nullptr;
  bool ok = false;
  if (t == napi_external) NAPI(napi_check_object_type_tag(env, v, &kBufferTag, &ok));
  if (!ok) throw JsError(std::string(what) + " is not a device buffer");
  void* data = nullptr;
  NAPI(napi_get_value_external(env, v, &data));
  auto* b = static_cast<Buffer*>(data);
  if (b->dead()) throw JsError(std::string(what) + " is a freed device buffer");
  return b;
}

Buffer* readBuffer(napi_env env, napi_value v, const char* what) {
  Buffer* b = readNullableBuffer(env, v, what);
  if (!b) throw JsError(std::string(what) + " is not a device buffer");
  return b;
}

double readNumber(napi_env env, napi_value v, const char* what) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) throw JsError(std::string(what) + " is not a number");
  return d;
}

int64_t readInt(napi_env env, napi_value v, const char* what) {
  const double d = readNumber(env, v, what);
  // 2^63: the first double past int64's range.
  if (!(d >= 0 && d < 9223372036854775808.0) || std::floor(d) != d) throw JsError(std::string(what) + " is not a whole number ≥ 0");
  return static_cast<int64_t>(d);
}

int readDtype(napi_env env, napi_value v, const char* what) {
  const int64_t t = readInt(env, v, what);
  if (t > kF64) throw JsError(std::string(what) + " is not a dtype code (0-3)");
  return static_cast<int>(t);
}

bool readFlag(napi_env env, napi_value v, const char* what) {
  bool b = false;
  if (napi_get_value_bool(env, v, &b) != napi_ok) throw JsError(std::string(what) + " is not a boolean");
  return b;
}

Bytes readBytes(napi_env env, napi_value v, const char* what) {
  bool is = false;
  NAPI(napi_is_typedarray(env, v, &is));
  if (!is) throw JsError(std::string(what) + " is not a typed array");
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value ab;
  size_t offset = 0;
  NAPI(napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset));
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

std::vector<std::string> readStrings(napi_env env, napi_value v, const char* what) {
  bool is = false;
  NAPI(napi_is_array(env, v, &is));
  if (!is) throw JsError(std::string(what) + " is not an array");
  uint32_t n = 0;
  NAPI(napi_get_array_length(env, v, &n));
  std::vector<std::string> out;
  for (uint32_t k = 0; k < n; k++) {
    napi_value e;
    NAPI(napi_get_element(env, v, k, &e));
    size_t len = 0;
    if (napi_get_value_string_utf8(env, e, nullptr, 0, &len) != napi_ok) throw JsError(std::string(what) + " holds something other than strings");
    std::string s(len, '\0');
    NAPI(napi_get_value_string_utf8(env, e, s.data(), len + 1, &len));
    out.push_back(s);
  }
  return out;
}

napi_value requireObject(napi_env env, napi_value v, const char* what) {
  if (typeOf(env, v) != napi_object) throw JsError(std::string(what) + " is not an options object");
  return v;
}

napi_value property(napi_env env, napi_value object, const char* name, bool optional, const char* fn) {
  napi_value v;
  NAPI(napi_get_named_property(env, object, name, &v));
  if (typeOf(env, v) != napi_undefined) return v;
  if (optional) return nullptr;
  throw JsError(std::string(fn) + ": option " + name + " is missing");
}

// ---- results and errors ------------------------------------------------------------------

napi_value guard(napi_env env, const std::function<napi_value()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
    return nullptr;
  }
}

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value wrapBuffer(napi_env env, Buffer* b) {
  napi_value ext;
  NAPI(napi_create_external(env, b, finalizeBuffer, nullptr, &ext));
  NAPI(napi_type_tag_object(env, ext, &kBufferTag));
  return ext;
}

void checkBytes(const Buffer* b, size_t need, const char* what) {
  if (b->bytes < need) throw JsError(std::string(what) + ": the device buffer holds " + std::to_string(b->bytes) + " bytes, " + std::to_string(need) + " needed");
}

void requireRange(int64_t value, int64_t lo, int64_t hi, const char* what) {
  if (value < lo || value > hi) throw JsError(std::string(what) + " is out of range (" + std::to_string(value) + " not in " + std::to_string(lo) + ".." + std::to_string(hi) + ")");
}

size_t actBytes(int64_t count, int t) {
  if (t != kF32 && t != kBF16) throw JsError("activations are float32 (0) or bfloat16 (2)");
  return static_cast<size_t>(count) * dtypeBytes(t);
}

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

napi_value runOnWorker(napi_env env, std::function<void()> job) {
  auto* p = new Pending();
  p->job = std::move(job);
  return queue(env, p);
}

Temp::Temp(size_t n) : ptr(deviceAlloc(n)), bytes(n) {}
Temp::~Temp() { deviceFree(ptr, bytes); }
