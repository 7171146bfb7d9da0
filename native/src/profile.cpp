// Profiling for the benchmarks (bench/op-profile.ts), never the app: timing events on the
// compute stream; collecting waits for the last mark and gives the milliseconds between
// consecutive marks.
#include <cstring>
#include <vector>

#include "addon-api.h"
#include "check.h"
#include "context.h"

namespace {

std::vector<cudaEvent_t>& profileEvents() {
  static std::vector<cudaEvent_t> events;
  return events;
}

}  // namespace

namespace js {

napi_value profileMark(napi_env env, const ProfileMarkArgs&) {
  requireReady();
  cudaEvent_t e;
  CUDA_CHECK(cudaEventCreate(&e));
  profileEvents().push_back(e);
  CUDA_CHECK(cudaEventRecord(e, ctx().stream));
  return undefined(env);
}

/** Milliseconds between consecutive marks (one fewer than the marks); the marks are forgotten. */
napi_value profileCollect(napi_env env, const ProfileCollectArgs&) {
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
}

}  // namespace js
