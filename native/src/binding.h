// The Node-API plumbing every binding shares: device buffers as tagged externals, the readers
// of JavaScript arguments (the generated addon-api.h calls them, so each function's arguments
// are checked as its TypeScript signature says), errors as JavaScript exceptions, promises for
// results that reach the host, and temporary device allocations. A binding is the body
// `napi_value js::<name>(napi_env, const <Name>Args&)` beside the kernels it launches.
#pragma once
#include <node_api.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dtypes.h"

/** A device allocation, or a view into one, as JavaScript holds it. */
struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  bool freed = false;
  /** A view's allocation (the view owns nothing; the reference keeps the allocation's handle alive). */
  Buffer* parent = nullptr;
  napi_ref parentRef = nullptr;
  bool dead() const { return freed || (parent && parent->freed); }
};

/** A failure to report to JavaScript as it is (bad arguments). */
struct JsError : std::runtime_error {
  explicit JsError(const std::string& m) : std::runtime_error(m) {}
};

#define NAPI(call)                                                        \
  do {                                                                    \
    if ((call) != napi_ok) throw JsError("Node-API call failed: " #call); \
  } while (0)

/** The bytes of a TypedArray argument (the caller's memory, valid during the call). */
struct Bytes {
  void* data = nullptr;
  size_t size = 0;
};

/** A function's positional arguments; fewer than `want` is an error. */
class Arguments {
 public:
  Arguments(napi_env env, napi_callback_info info, size_t want, const char* fn);
  napi_value at(size_t i) const { return values_[i]; }

 private:
  std::vector<napi_value> values_;
};

// Readers: `what` names the argument in errors ("rmsNorm: x is not a device buffer").
Buffer* readBuffer(napi_env env, napi_value v, const char* what);
Buffer* readNullableBuffer(napi_env env, napi_value v, const char* what);
/** A whole number ≥ 0 (TypeScript's `Int`). */
int64_t readInt(napi_env env, napi_value v, const char* what);
/** A NATIVE_DTYPES code (TypeScript's `Dtype`). */
int readDtype(napi_env env, napi_value v, const char* what);
double readNumber(napi_env env, napi_value v, const char* what);
bool readFlag(napi_env env, napi_value v, const char* what);
Bytes readBytes(napi_env env, napi_value v, const char* what);
std::vector<std::string> readStrings(napi_env env, napi_value v, const char* what);
/** An options object. */
napi_value requireObject(napi_env env, napi_value v, const char* what);
/** A property of an options object; nullptr where it is optional and absent (or undefined). */
napi_value property(napi_env env, napi_value object, const char* name, bool optional, const char* fn);

/** A registered function (the generated table). */
struct AddonFunction {
  const char* name;
  napi_callback callback;
};

/** Runs a binding body, turning C++ failures into a JavaScript exception. */
napi_value guard(napi_env env, const std::function<napi_value()>& body);
napi_value undefined(napi_env env);
/** Wraps a device allocation (or view) for JavaScript: tagged, freed by free() or, as a safety net, by GC. */
napi_value wrapBuffer(napi_env env, Buffer* b);

void checkBytes(const Buffer* b, size_t need, const char* what);
/** `what` must lie in [lo, hi]. */
void requireRange(int64_t value, int64_t lo, int64_t hi, const char* what);
/** Bytes of an activation of `count` elements of type t (float32 or bfloat16). */
size_t actBytes(int64_t count, int t);

template <typename T>
T* at(const Buffer* b) {
  return static_cast<T*>(b->ptr);
}

/** What a promise resolves with. */
enum class ResultKind { Void, Bytes, Float64s, Number, NonFinite };

/** Copies `bytes` of device memory to a staging buffer in stream order; the promise resolves with them. */
napi_value deliver(napi_env env, const void* src, size_t bytes, ResultKind kind);
/** A promise resolved (with undefined) once `job` has run on a libuv worker thread; a failure rejects it. */
napi_value runOnWorker(napi_env env, std::function<void()> job);

/** A temporary device allocation freed in stream order when it goes out of scope. */
struct Temp {
  void* ptr;
  size_t bytes;
  explicit Temp(size_t n);
  ~Temp();
  Temp(const Temp&) = delete;
  Temp& operator=(const Temp&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};
