// The backward kernels of nn.h (training through the frozen backbone into the LoRA factors).
// Each is the adjoint of a forward kernel in nn.cu, in float32.
#include <cuda_bf16.h>

#include <algorithm>

#include "check.h"
#include "kernels.cuh"
#include "nn.h"
#include "nn-common.cuh"

namespace {

using namespace nn_common;

__global__ void __launch_bounds__(kThreads) rmsNormBackwardKernel(float* dx, const float* dn, const float* x, const float* w, int64_t hidden, float eps) {
  __shared__ float shared[32];
  const float* xr = x + blockIdx.x * hidden;
  const float* dr = dn + blockIdx.x * hidden;
  float ss = 0, gx = 0;
  for (int64_t c = threadIdx.x; c < hidden; c += kThreads) {
    ss += xr[c] * xr[c];
    gx += dr[c] * w[c] * xr[c];
  }
  ss = blockReduce<false>(ss, shared);
  gx = blockReduce<false>(gx, shared);
  const float inv = 1.f / sqrtf(ss / static_cast<float>(hidden) + eps);
  const float k = inv * inv * inv * gx / static_cast<float>(hidden);
  for (int64_t c = threadIdx.x; c < hidden; c += kThreads) dx[blockIdx.x * hidden + c] += inv * dr[c] * w[c] - xr[c] * k;
}

__global__ void ropeHeadsBackwardKernel(float* out, const float* d, int64_t batch, int64_t seq, int64_t heads, int64_t hd, int64_t repeat, const float* cos,
                                        const float* sin) {
  const int64_t half = hd / 2;
  GRID_STRIDE(i, batch * seq * heads * hd) {
    const int64_t e = i % hd;
    const int64_t h = (i / hd) % heads;
    const int64_t s = (i / (hd * heads)) % seq;
    const int64_t b = i / (hd * heads * seq);
    float acc = 0;
    for (int64_t r = 0; r < repeat; r++) {
      const float* row = d + ((b * heads * repeat + h * repeat + r) * seq + s) * hd;
      float g = row[e];
      if (cos) {
        const float partner = e < half ? row[e + half] * sin[s * hd + e + half] : -row[e - half] * sin[s * hd + e - half];
        g = g * cos[s * hd + e] + partner;
      }
      acc += g;
    }
    out[i] += acc;
  }
}

template <typename Td>
__global__ void __launch_bounds__(kThreads) softmaxBackwardKernel(Td* ds, const float* p, const float* dp, int64_t keys) {
  __shared__ float shared[32];
  const float* pr = p + blockIdx.x * keys;
  const float* dr = dp + blockIdx.x * keys;
  float dot = 0;
  for (int64_t j = threadIdx.x; j < keys; j += kThreads) dot += pr[j] * dr[j];
  dot = blockReduce<false>(dot, shared);
  for (int64_t j = threadIdx.x; j < keys; j += kThreads) store(ds, blockIdx.x * keys + j, pr[j] * (dr[j] - dot));
}

template <typename Ti>
__global__ void swigluBackwardKernel(float* dgate, float* dup, const float* da, const Ti* gate, const Ti* up, int64_t count) {
  GRID_STRIDE(i, count) {
    const float g = load(gate, i), u = load(up, i);
    const float sig = 1.f / (1.f + expf(-g));
    dup[i] = da[i] * g * sig;
    dgate[i] = da[i] * u * sig * (1.f + g * (1.f - sig));
  }
}

template <typename Td>
__global__ void __launch_bounds__(kThreads) crossEntropyBackwardKernel(Td* dz, float* loss, const float* logits, const int32_t* targets, const float* c,
                                                                        int64_t vocab) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const float* z = logits + row * vocab;
  const float weight = c[row];
  Td* out = dz + row * vocab;
  if (weight == 0.f) {
    for (int64_t j = threadIdx.x; j < vocab; j += kThreads) store(out, j, 0.f);
    if (threadIdx.x == 0) loss[row] = 0.f;
    return;
  }
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) m = fmaxf(m, z[j]);
  m = blockReduce<true>(m, shared);
  float sum = 0;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) sum += expf(z[j] - m);
  sum = blockReduce<false>(sum, shared);
  const int32_t t = targets[row];
  const float inv = 1.f / sum;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) store(out, j, weight * (expf(z[j] - m) * inv - (j == t ? 1.f : 0.f)));
  if (threadIdx.x == 0) loss[row] = weight * ((logf(sum) + m) - z[t]);
}

void requireAct(int type, const char* what) {
  if (type != kF32 && type != kBF16) throw NativeError(std::string(what) + ": float32 or bfloat16");
}

}  // namespace

void launchRmsNormBackward(float* dx, const float* dn, const float* x, const float* w, int64_t rows, int64_t hidden, float eps, cudaStream_t stream) {
  if (rows == 0) return;
  rmsNormBackwardKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(dx, dn, x, w, hidden, eps);
  CUDA_CHECK(cudaGetLastError());
}

void launchRopeHeadsBackward(float* out, const float* d, int64_t batch, int64_t seq, int64_t heads, int64_t headDim, int64_t repeat, const float* cos,
                             const float* sin, cudaStream_t stream) {
  ropeHeadsBackwardKernel<<<gridFor(batch * seq * heads * headDim), kThreads, 0, stream>>>(out, d, batch, seq, heads, headDim, repeat, cos, sin);
  CUDA_CHECK(cudaGetLastError());
}

void launchSoftmaxBackward(void* ds, int dsType, const float* p, const float* dp, int64_t rows, int64_t keys, cudaStream_t stream) {
  if (rows == 0) return;
  requireAct(dsType, "softmaxBackward");
  if (dsType == kF32) softmaxBackwardKernel<float><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(static_cast<float*>(ds), p, dp, keys);
  else softmaxBackwardKernel<__nv_bfloat16><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(ds), p, dp, keys);
  CUDA_CHECK(cudaGetLastError());
}

void launchSwigluBackward(float* dgate, float* dup, const float* da, const void* gate, const void* up, int inType, int64_t count, cudaStream_t stream) {
  requireAct(inType, "swigluBackward");
  if (inType == kF32) {
    swigluBackwardKernel<float><<<gridFor(count), kThreads, 0, stream>>>(dgate, dup, da, static_cast<const float*>(gate), static_cast<const float*>(up), count);
  } else {
    swigluBackwardKernel<__nv_bfloat16><<<gridFor(count), kThreads, 0, stream>>>(dgate, dup, da, static_cast<const __nv_bfloat16*>(gate),
                                                                                  static_cast<const __nv_bfloat16*>(up), count);
  }
  CUDA_CHECK(cudaGetLastError());
}

void launchCrossEntropyBackward(void* dlogits, int dType, float* loss, const float* logits, const int32_t* targets, const float* c, int64_t rows,
                                int64_t vocab, cudaStream_t stream) {
  if (rows == 0) return;
  requireAct(dType, "crossEntropyBackward");
  if (dType == kF32) {
    crossEntropyBackwardKernel<float><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(static_cast<float*>(dlogits), loss, logits, targets, c, vocab);
  } else {
    crossEntropyBackwardKernel<__nv_bfloat16><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(dlogits), loss, logits,
                                                                                                   targets, c, vocab);
  }
  CUDA_CHECK(cudaGetLastError());
}
