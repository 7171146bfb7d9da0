// The device and its memory as JavaScript sees them: opening the GPU, allocations and views,
// copies between them and to or from the host, file reads straight into the device (pread
// into two pinned chunks, on to the GPU on the transfer stream, bf16/f16/f64 made float32
// there), the memory counters, and waiting for the compute stream.
#include <cerrno>
#include <cstring>
#include <unistd.h>

#include "addon-api.h"
#include "check.h"
#include "context.h"
#include "convert.cuh"

namespace {

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

napi_value number(napi_env env, double v) {
  napi_value out;
  NAPI(napi_create_double(env, v, &out));
  return out;
}

}  // namespace

namespace js {

napi_value init(napi_env env, const InitArgs& a) {
  const DeviceFacts& f = initContext(a.libDirs);
  napi_value o;
  NAPI(napi_create_object(env, &o));
  auto set = [&](const char* k, napi_value v) { NAPI(napi_set_named_property(env, o, k, v)); };
  auto text = [&](const std::string& s) {
    napi_value v;
    NAPI(napi_create_string_utf8(env, s.c_str(), NAPI_AUTO_LENGTH, &v));
    return v;
  };
  set("name", text(f.name));
  set("totalMemory", number(env, static_cast<double>(f.totalMemory)));
  set("multiprocessors", number(env, f.multiprocessors));
  set("computeCapability", text(std::to_string(f.major) + "." + std::to_string(f.minor)));
  set("driverVersion", number(env, f.driverVersion));
  set("runtimeVersion", number(env, f.runtimeVersion));
  set("cublasVersion", number(env, f.cublasVersion));
  set("cublasPath", text(f.cublasPath));
  set("driverPath", text(f.driverPath));
  return o;
}

napi_value alloc(napi_env env, const AllocArgs& a) {
  requireRange(a.bytes, 1, INT64_MAX, "alloc: bytes");
  auto* b = new Buffer();
  try {
    b->ptr = deviceAlloc(static_cast<size_t>(a.bytes));
  } catch (...) {
    delete b;
    throw;
  }
  b->bytes = static_cast<size_t>(a.bytes);
  return wrapBuffer(env, b);
}

napi_value free(napi_env env, const FreeArgs& a) {
  a.buf->freed = true;
  if (!a.buf->parent) deviceFree(a.buf->ptr, a.buf->bytes);
  return undefined(env);
}

/** A buffer over bytes [offset, offset + bytes) of an allocation: freeing it frees nothing, and it dies with the allocation. */
napi_value view(napi_env env, const ViewArgs& a) {
  Buffer* base = a.buf;
  if (base->parent) throw JsError("view: the buffer is itself a view");
  requireRange(a.bytes, 1, INT64_MAX, "view: bytes");
  const auto offset = static_cast<size_t>(a.offsetBytes), bytes = static_cast<size_t>(a.bytes);
  if (offset > base->bytes || bytes > base->bytes - offset) throw JsError("view: bytes " + std::to_string(offset) + "+" + std::to_string(bytes) + " lie outside the buffer's " + std::to_string(base->bytes));
  auto* b = new Buffer();
  b->ptr = static_cast<char*>(base->ptr) + offset;
  b->bytes = bytes;
  b->parent = base;
  try {
    // The view holds the allocation's JavaScript handle, keeping it alive.
    NAPI(napi_create_reference(env, a.bufHandle, 1, &b->parentRef));
    return wrapBuffer(env, b);
  } catch (...) {
    if (b->parentRef) napi_delete_reference(env, b->parentRef);
    delete b;
    throw;
  }
}

napi_value memset(napi_env env, const MemsetArgs& a) {
  requireRange(a.byte, 0, 255, "memset: byte");
  checkBytes(a.buf, static_cast<size_t>(a.bytes), "memset");
  CUDA_CHECK(cudaMemsetAsync(a.buf->ptr, static_cast<int>(a.byte), static_cast<size_t>(a.bytes), ctx().stream));
  return undefined(env);
}

napi_value copy(napi_env env, const CopyArgs& a) {
  const auto dOff = static_cast<size_t>(a.dstOffsetBytes), sOff = static_cast<size_t>(a.srcOffsetBytes), bytes = static_cast<size_t>(a.bytes);
  checkBytes(a.dst, dOff + bytes, "copy");
  checkBytes(a.src, sOff + bytes, "copy");
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(static_cast<uint8_t*>(a.dst->ptr) + dOff, static_cast<uint8_t*>(a.src->ptr) + sOff, bytes, cudaMemcpyDeviceToDevice, ctx().stream));
  return undefined(env);
}

napi_value copy2d(napi_env env, const Copy2dArgs& a) {
  const auto dPitch = static_cast<size_t>(a.dstPitch), dOff = static_cast<size_t>(a.dstOffset);
  const auto sPitch = static_cast<size_t>(a.srcPitch), sOff = static_cast<size_t>(a.srcOffset);
  const auto width = static_cast<size_t>(a.widthBytes), rows = static_cast<size_t>(a.rows);
  if (rows == 0 || width == 0) return undefined(env);
  checkBytes(a.dst, dOff + (rows - 1) * dPitch + width, "copy2d");
  checkBytes(a.src, sOff + (rows - 1) * sPitch + width, "copy2d");
  CUDA_CHECK(cudaMemcpy2DAsync(static_cast<uint8_t*>(a.dst->ptr) + dOff, dPitch, static_cast<uint8_t*>(a.src->ptr) + sOff, sPitch, width, rows,
                               cudaMemcpyDeviceToDevice, ctx().stream));
  return undefined(env);
}

napi_value upload(napi_env env, const UploadArgs& a) {
  checkBytes(a.dst, a.data.size, "upload");
  uploadHost(a.dst->ptr, a.data.data, a.data.size);
  return undefined(env);
}

napi_value download(napi_env env, const DownloadArgs& a) {
  checkBytes(a.src, static_cast<size_t>(a.bytes), "download");
  return deliver(env, a.src->ptr, static_cast<size_t>(a.bytes), ResultKind::Bytes);
}

napi_value readFile(napi_env env, const ReadFileArgs& a) {
  requireReady();
  requireRange(a.fd, 0, INT32_MAX, "readFile: fd");
  checkBytes(a.dst, static_cast<size_t>(a.count) * 4, "readFile");
  Context& c = ctx();
  // The destination was allocated on the compute stream: the transfer stream waits for that.
  cudaEvent_t allocated;
  CUDA_CHECK(cudaEventCreateWithFlags(&allocated, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(allocated, c.stream));
  const int fd = static_cast<int>(a.fd), dtype = a.dtype;
  const int64_t offset = a.offset, count = a.count;
  void* out = a.dst->ptr;
  return runOnWorker(env, [fd, offset, dtype, count, out, allocated] {
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
  });
}

napi_value memory(napi_env env, const MemoryArgs&) {
  requireReady();
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  napi_value o;
  NAPI(napi_create_object(env, &o));
  NAPI(napi_set_named_property(env, o, "inUse", number(env, static_cast<double>(ctx().inUse.load()))));
  NAPI(napi_set_named_property(env, o, "peak", number(env, static_cast<double>(ctx().peak.load()))));
  NAPI(napi_set_named_property(env, o, "free", number(env, static_cast<double>(free))));
  NAPI(napi_set_named_property(env, o, "total", number(env, static_cast<double>(total))));
  return o;
}

/** Starts a new peak: the peak becomes what is in use now (one job's peak, not the process's). */
napi_value resetPeak(napi_env env, const ResetPeakArgs&) {
  requireReady();
  ctx().peak.store(ctx().inUse.load());
  return undefined(env);
}

napi_value synchronize(napi_env env, const SynchronizeArgs&) {
  requireReady();
  return runOnWorker(env, [] { CUDA_CHECK(cudaStreamSynchronize(ctx().stream)); });
}

}  // namespace js
