// Fused causal attention (the forward; its backward is the blocked path's, attention.cu),
// FlashAttention-2 style on the tensor cores' mma.sync
// (bf16 in, fp32 accumulate). One block of 4 warps takes 64 query rows of one head, 16 per
// warp, and walks the keys they may see in tiles of 64, staged in shared memory. Everything
// per row stays in registers: the warp's Q as A fragments, S = Q·Kᵀ as accumulator
// fragments, the online softmax (running max m and sum l; a row's values are spread over
// the 4 lanes of a quad), P rounded to bf16 and fed back as A fragments (the accumulator
// layout of m16n8 is the A layout of the next m16n8k16), and O as accumulator fragments.
// Nothing of size seq × seq is ever stored.
//
// Fragment layouts of mma.m16n8k16 (lane = 4·g + t): A (16×16, row-major): {row g, cols 2t,
// 2t+1}, {row g+8, cols 2t, 2t+1}, {row g, cols 2t+8, 2t+9}, {row g+8, cols 2t+8, 2t+9};
// B (16×8): {rows 2t, 2t+1; col g}, {rows 2t+8, 2t+9; col g}; C (16×8, fp32): row g cols
// 2t, 2t+1, then row g+8 the same. Two bf16 in a register: the lower column in the low half.
#include <cuda_bf16.h>

#include <cstdint>

#include "addon-api.h"
#include "check.h"
#include "context.h"

namespace {

using bf16 = __nv_bfloat16;

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 16;
constexpr int kRowsPerBlock = kWarps * kRowsPerWarp;  // query rows per thread block
constexpr int kKeys = 64;                             // keys per tile

__device__ __forceinline__ uint32_t packFloats(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t packHalves(bf16 lo, bf16 hi) {
  __nv_bfloat162 v;
  v.x = lo;
  v.y = hi;
  return *reinterpret_cast<uint32_t*>(&v);
}

/** c += a·b on the tensor cores (m16n8k16, bf16 operands, fp32 accumulators). */
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/** Max (or sum) over the 4 lanes of a quad, which hold one row's values between them. */
__device__ __forceinline__ float quadMax(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quadSum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

template <int HD>
__global__ void __launch_bounds__(kWarps * 32) flashAttentionKernel(bf16* out, const bf16* q, const bf16* k, const bf16* v, int64_t seq, int heads,
                                                                    int group, int64_t window, float scaleLog2) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // bf16 tensor cores start with Ampere; the host never launches this below 8.0
#else
  // The pad of 8 bf16 per row spreads a fragment's rows over all the banks.
  constexpr int kStride = HD + 8;
  __shared__ __align__(16) bf16 Ks[kKeys * kStride];
  __shared__ __align__(16) bf16 Vs[kKeys * kStride];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int64_t bh = blockIdx.y;
  const int64_t b = bh / heads, h = bh % heads;
  const int64_t kvHeads = heads / group;
  // Blocks of later rows see more keys: they start first.
  const int64_t q0 = static_cast<int64_t>(gridDim.x - 1 - blockIdx.x) * kRowsPerBlock;
  const bf16* qHead = q + bh * seq * HD;
  const bf16* kHead = k + (b * kvHeads + h / group) * seq * HD;
  const bf16* vHead = v + (b * kvHeads + h / group) * seq * HD;
  // This lane's two rows of its warp's 16.
  const int64_t row0 = q0 + warp * kRowsPerWarp + g, row1 = row0 + 8;

  uint32_t qa[HD / 16][4];
  auto qWord = [&](int64_t row, int col) -> uint32_t { return row < seq ? *reinterpret_cast<const uint32_t*>(qHead + row * HD + col) : 0u; };
#pragma unroll
  for (int kk = 0; kk < HD / 16; kk++) {
    qa[kk][0] = qWord(row0, kk * 16 + 2 * t);
    qa[kk][1] = qWord(row1, kk * 16 + 2 * t);
    qa[kk][2] = qWord(row0, kk * 16 + 8 + 2 * t);
    qa[kk][3] = qWord(row1, kk * 16 + 8 + 2 * t);
  }
  float o[HD / 8][4];
#pragma unroll
  for (int n = 0; n < HD / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  // A row that has seen no key yet keeps m = −∞, l = 0 and O = 0.
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;

  int64_t kLo = window > 0 ? q0 - window + 1 : 0;
  kLo = kLo < 0 ? 0 : (kLo / kKeys) * kKeys;
  const int64_t kHi = q0 + kRowsPerBlock < seq ? q0 + kRowsPerBlock : seq;
  for (int64_t k0 = kLo; k0 < kHi; k0 += kKeys) {
    __syncthreads();  // every warp is done with the previous tiles
    for (int i = threadIdx.x; i < kKeys * HD / 8; i += kWarps * 32) {
      const int r = i / (HD / 8), c = (i % (HD / 8)) * 8;
      int4 kv = make_int4(0, 0, 0, 0), vv = make_int4(0, 0, 0, 0);
      if (k0 + r < seq) {
        kv = *reinterpret_cast<const int4*>(kHead + (k0 + r) * HD + c);
        vv = *reinterpret_cast<const int4*>(vHead + (k0 + r) * HD + c);
      }
      *reinterpret_cast<int4*>(Ks + r * kStride + c) = kv;
      *reinterpret_cast<int4*>(Vs + r * kStride + c) = vv;
    }
    __syncthreads();

    // S = Q·Kᵀ over the tile's 64 keys: 8 accumulator fragments of 8 keys.
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; n++) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
      const bf16* kRow = Ks + (n * 8 + g) * kStride + 2 * t;
#pragma unroll
      for (int kk = 0; kk < HD / 16; kk++) {
        mma(s[n], qa[kk], *reinterpret_cast<const uint32_t*>(kRow + kk * 16), *reinterpret_cast<const uint32_t*>(kRow + kk * 16 + 8));
      }
    }
    // The causal (and window) mask, the scale, and the online softmax.
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < kKeys / 8; n++) {
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int64_t key = k0 + n * 8 + 2 * t + e;
        const bool ok0 = key <= row0 && key < seq && (window <= 0 || key > row0 - window);
        const bool ok1 = key <= row1 && key < seq && (window <= 0 || key > row1 - window);
        s[n][e] = ok0 ? s[n][e] * scaleLog2 : -INFINITY;
        s[n][2 + e] = ok1 ? s[n][2 + e] * scaleLog2 : -INFINITY;
        mx0 = fmaxf(mx0, s[n][e]);
        mx1 = fmaxf(mx1, s[n][2 + e]);
      }
    }
    const float new0 = fmaxf(m0, quadMax(mx0)), new1 = fmaxf(m1, quadMax(mx1));
    const float alpha0 = new0 == -INFINITY ? 1.f : exp2f(m0 - new0);
    const float alpha1 = new1 == -INFINITY ? 1.f : exp2f(m1 - new1);
    float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
    for (int n = 0; n < kKeys / 8; n++) {
#pragma unroll
      for (int e = 0; e < 2; e++) {
        s[n][e] = new0 == -INFINITY ? 0.f : exp2f(s[n][e] - new0);
        s[n][2 + e] = new1 == -INFINITY ? 0.f : exp2f(s[n][2 + e] - new1);
        sum0 += s[n][e];
        sum1 += s[n][2 + e];
      }
    }
    l0 = l0 * alpha0 + quadSum(sum0);
    l1 = l1 * alpha1 + quadSum(sum1);
    m0 = new0;
    m1 = new1;
#pragma unroll
    for (int n = 0; n < HD / 8; n++) {
      o[n][0] *= alpha0;
      o[n][1] *= alpha0;
      o[n][2] *= alpha1;
      o[n][3] *= alpha1;
    }
    // O += P·V, P rounded to bf16 straight from the S fragments.
#pragma unroll
    for (int kc = 0; kc < kKeys / 16; kc++) {
      const uint32_t pa[4] = {packFloats(s[2 * kc][0], s[2 * kc][1]), packFloats(s[2 * kc][2], s[2 * kc][3]), packFloats(s[2 * kc + 1][0], s[2 * kc + 1][1]),
                              packFloats(s[2 * kc + 1][2], s[2 * kc + 1][3])};
      const bf16* vKeys = Vs + (kc * 16 + 2 * t) * kStride + g;
#pragma unroll
      for (int n = 0; n < HD / 8; n++) {
        const bf16* col = vKeys + n * 8;
        mma(o[n], pa, packHalves(col[0], col[kStride]), packHalves(col[8 * kStride], col[9 * kStride]));
      }
    }
  }
  const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
  const int64_t width = static_cast<int64_t>(heads) * HD;
#pragma unroll
  for (int n = 0; n < HD / 8; n++) {
    const int64_t col = h * HD + n * 8 + 2 * t;
    if (row0 < seq) *reinterpret_cast<uint32_t*>(out + (b * seq + row0) * width + col) = packFloats(o[n][0] * inv0, o[n][1] * inv0);
    if (row1 < seq) *reinterpret_cast<uint32_t*>(out + (b * seq + row1) * width + col) = packFloats(o[n][2] * inv1, o[n][3] * inv1);
  }
#endif
}

template <int HD>
void launch(void* out, const void* q, const void* k, const void* v, int64_t batch, int64_t seq, int64_t heads, int64_t group, int64_t window,
            float scale, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((seq + kRowsPerBlock - 1) / kRowsPerBlock), static_cast<unsigned>(batch * heads));
  const float log2e = 1.4426950408889634f;
  flashAttentionKernel<HD><<<grid, kWarps * 32, 0, stream>>>(static_cast<bf16*>(out), static_cast<const bf16*>(q), static_cast<const bf16*>(k),
                                                             static_cast<const bf16*>(v), seq, static_cast<int>(heads), static_cast<int>(group), window,
                                                             scale * log2e);
  CUDA_CHECK(cudaGetLastError());
}

bool flashAttentionSupports(int64_t headDim) { return headDim == 16 || headDim == 32 || headDim == 64 || headDim == 128; }

}  // namespace

namespace js {

/**
 * q [batch, heads, seq, headDim], k and v [batch, heads / group, seq, headDim] in bfloat16
 * (query head h reads K/V head h / group), out [batch·seq, heads·headDim]; keys as in
 * causalSoftmax; the scores scaled by `scale`. Head sizes 16, 32, 64, 128.
 */
napi_value flashAttention(napi_env env, const FlashAttentionArgs& a) {
  requireRange(a.heads, 1, INT64_MAX, "flashAttention: heads");
  requireRange(a.group, 1, INT64_MAX, "flashAttention: group");
  requireRange(a.headDim, 1, INT64_MAX, "flashAttention: headDim");
  const int64_t batch = a.batch, seq = a.seq, heads = a.heads, group = a.group, headDim = a.headDim;
  if (heads % group) throw JsError("flashAttention: the heads must split into groups");
  if (!flashAttentionSupports(headDim)) throw JsError("flashAttention: head dimension not built");
  checkBytes(a.out, actBytes(batch * seq * heads * headDim, kBF16), "flashAttention out");
  checkBytes(a.q, actBytes(batch * seq * heads * headDim, kBF16), "flashAttention q");
  checkBytes(a.k, actBytes(batch * seq * (heads / group) * headDim, kBF16), "flashAttention k");
  checkBytes(a.v, actBytes(batch * seq * (heads / group) * headDim, kBF16), "flashAttention v");
  if (batch * seq == 0) return undefined(env);
  const auto scale = static_cast<float>(a.scale);
  cudaStream_t stream = ctx().stream;
  void* out = a.out->ptr;
  const void *q = a.q->ptr, *k = a.k->ptr, *v = a.v->ptr;
  switch (headDim) {
    case 16: launch<16>(out, q, k, v, batch, seq, heads, group, a.window, scale, stream); break;
    case 32: launch<32>(out, q, k, v, batch, seq, heads, group, a.window, scale, stream); break;
    case 64: launch<64>(out, q, k, v, batch, seq, heads, group, a.window, scale, stream); break;
    default: launch<128>(out, q, k, v, batch, seq, heads, group, a.window, scale, stream); break;
  }
  return undefined(env);
}

}  // namespace js
