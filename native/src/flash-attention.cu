// The fused attention kernel of nn.h. One block of 128 threads takes 64 query rows of one
// head (16 per warp) and walks the keys they may see in blocks of 64: S = Q·Kᵀ on the tensor
// cores (bf16 in, fp32 out) into shared memory, the online softmax per row in fp32 (a warp
// per row at a time), P rounded to bf16, O = O·α + P·V accumulated in fp32 in shared memory.
// Nothing of size seq × seq is ever stored.
#include <cuda_bf16.h>
#include <mma.h>

#include "check.h"
#include "nn.h"

namespace {

using bf16 = __nv_bfloat16;
using namespace nvcuda;

constexpr int kRowsPerBlock = 64;  // query rows per thread block
constexpr int kKeysPerStep = 64;   // keys per step
constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 16;

template <int HD>
constexpr size_t sharedBytes() {
  return (3 * kRowsPerBlock * HD) * sizeof(bf16)                // Q, K, V tiles
         + kWarps * kRowsPerWarp * kKeysPerStep * sizeof(float)  // S per warp
         + kWarps * kRowsPerWarp * kKeysPerStep * sizeof(bf16)   // P per warp
         + kWarps * kRowsPerWarp * HD * sizeof(float);           // O per warp
}

/** Rows [r0, r0 + 64) of a [seq, HD] head into shared memory, zeros past the end. */
template <int HD>
__device__ void loadTile(bf16* dst, const bf16* src, int64_t r0, int64_t seq) {
  constexpr int kVec = 8;  // bf16 per 16-byte load
  for (int i = threadIdx.x; i < kRowsPerBlock * HD / kVec; i += kWarps * 32) {
    const int r = i / (HD / kVec), c = (i % (HD / kVec)) * kVec;
    int4 v = make_int4(0, 0, 0, 0);
    if (r0 + r < seq) v = *reinterpret_cast<const int4*>(src + (r0 + r) * HD + c);
    *reinterpret_cast<int4*>(dst + r * HD + c) = v;
  }
}

template <int HD>
__global__ void __launch_bounds__(kWarps * 32) flashAttentionKernel(bf16* out, const bf16* q, const bf16* k, const bf16* v, int64_t seq, int heads,
                                                                    int group, int64_t window, float scaleLog2) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // bf16 tensor cores start with Ampere; the host never launches this below 8.0
#else
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* Qs = reinterpret_cast<bf16*>(smem);
  bf16* Ks = Qs + kRowsPerBlock * HD;
  bf16* Vs = Ks + kKeysPerStep * HD;
  float* Ss = reinterpret_cast<float*>(Vs + kKeysPerStep * HD);
  bf16* Ps = reinterpret_cast<bf16*>(Ss + kWarps * kRowsPerWarp * kKeysPerStep);
  float* Os = reinterpret_cast<float*>(Ps + kWarps * kRowsPerWarp * kKeysPerStep);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = blockIdx.y;
  const int64_t b = bh / heads, h = bh % heads;
  const int64_t kvHeads = heads / group;
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock;
  const bf16* qHead = q + bh * seq * HD;
  const bf16* kHead = k + (b * kvHeads + h / group) * seq * HD;
  const bf16* vHead = v + (b * kvHeads + h / group) * seq * HD;

  float* Sw = Ss + warp * kRowsPerWarp * kKeysPerStep;
  bf16* Pw = Ps + warp * kRowsPerWarp * kKeysPerStep;
  float* Ow = Os + warp * kRowsPerWarp * HD;
  loadTile<HD>(Qs, qHead, q0, seq);
  for (int i = lane; i < kRowsPerWarp * HD; i += 32) Ow[i] = 0.f;
  __syncthreads();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> qf[HD / 16];
  for (int kk = 0; kk < HD / 16; kk++) wmma::load_matrix_sync(qf[kk], Qs + warp * kRowsPerWarp * HD + kk * 16, HD);

  // Each warp walks its 16 rows one at a time with all 32 lanes across the keys and the head
  // (consecutive lanes, consecutive addresses: no shared-memory bank conflicts); every lane
  // keeps the running max m and sum l of all 16 rows.
  float m[kRowsPerWarp], l[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; r++) {
    m[r] = -INFINITY;
    l[r] = 0.f;
  }
  const int64_t row0 = q0 + warp * kRowsPerWarp;
  int64_t kLo = window > 0 ? q0 - window + 1 : 0;
  kLo = kLo < 0 ? 0 : (kLo / kKeysPerStep) * kKeysPerStep;
  const int64_t kHi = q0 + kRowsPerBlock < seq ? q0 + kRowsPerBlock : seq;

  for (int64_t k0 = kLo; k0 < kHi; k0 += kKeysPerStep) {
    __syncthreads();  // every warp is done with the previous K and V tiles
    loadTile<HD>(Ks, kHead, k0, seq);
    loadTile<HD>(Vs, vHead, k0, seq);
    __syncthreads();
    for (int n = 0; n < kKeysPerStep / 16; n++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
      for (int kk = 0; kk < HD / 16; kk++) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> kf;  // Kᵀ: column j is key j
        wmma::load_matrix_sync(kf, Ks + n * 16 * HD + kk * 16, HD);
        wmma::mma_sync(acc, qf[kk], kf, acc);
      }
      wmma::store_matrix_sync(Sw + n * 16, acc, kKeysPerStep, wmma::mem_row_major);
    }
    __syncwarp();
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) {
      const int64_t qPos = row0 + r;
      float* sRow = Sw + r * kKeysPerStep;
      const int64_t key0 = k0 + lane, key1 = k0 + lane + 32;
      const bool ok0 = key0 <= qPos && key0 < seq && (window <= 0 || key0 > qPos - window);
      const bool ok1 = key1 <= qPos && key1 < seq && (window <= 0 || key1 > qPos - window);
      const float s0 = ok0 ? sRow[lane] * scaleLog2 : -INFINITY;
      const float s1 = ok1 ? sRow[lane + 32] * scaleLog2 : -INFINITY;
      float mx = fmaxf(s0, s1);
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float mNew = fmaxf(m[r], mx);
      // A row that has seen no key yet keeps m = −∞, l = 0 and O = 0.
      const float alpha = mNew == -INFINITY ? 1.f : exp2f(m[r] - mNew);
      const float p0 = mNew == -INFINITY ? 0.f : exp2f(s0 - mNew);
      const float p1 = mNew == -INFINITY ? 0.f : exp2f(s1 - mNew);
      Pw[r * kKeysPerStep + lane] = __float2bfloat16_rn(p0);
      Pw[r * kKeysPerStep + lane + 32] = __float2bfloat16_rn(p1);
      float sum = p0 + p1;
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      l[r] = l[r] * alpha + sum;
      m[r] = mNew;
      float* oRow = Ow + r * HD;
      for (int d = lane; d < HD; d += 32) oRow[d] *= alpha;
    }
    __syncwarp();
    for (int n = 0; n < HD / 16; n++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, Ow + n * 16, HD, wmma::mem_row_major);
      for (int kk = 0; kk < kKeysPerStep / 16; kk++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> pf;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> vf;
        wmma::load_matrix_sync(pf, Pw + kk * 16, kKeysPerStep);
        wmma::load_matrix_sync(vf, Vs + kk * 16 * HD + n * 16, HD);
        wmma::mma_sync(acc, pf, vf, acc);
      }
      wmma::store_matrix_sync(Ow + n * 16, acc, HD, wmma::mem_row_major);
    }
    __syncwarp();
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; r++) {
    if (row0 + r >= seq) break;
    const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
    bf16* dst = out + (b * seq + row0 + r) * (static_cast<int64_t>(heads) * HD) + h * HD;
    for (int d = lane; d < HD; d += 32) dst[d] = __float2bfloat16_rn(Ow[r * HD + d] * inv);
  }
#endif
}

template <int HD>
void launch(void* out, const void* q, const void* k, const void* v, int64_t batch, int64_t seq, int64_t heads, int64_t group, int64_t window,
            float scale, cudaStream_t stream) {
  constexpr size_t bytes = sharedBytes<HD>();
  static bool configured = false;
  if (!configured) {
    CUDA_CHECK(cudaFuncSetAttribute(flashAttentionKernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    configured = true;
  }
  const dim3 grid(static_cast<unsigned>((seq + kRowsPerBlock - 1) / kRowsPerBlock), static_cast<unsigned>(batch * heads));
  const float log2e = 1.4426950408889634f;
  flashAttentionKernel<HD><<<grid, kWarps * 32, bytes, stream>>>(static_cast<bf16*>(out), static_cast<const bf16*>(q), static_cast<const bf16*>(k),
                                                                 static_cast<const bf16*>(v), seq, static_cast<int>(heads), static_cast<int>(group),
                                                                 window, scale * log2e);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

bool flashAttentionSupports(int64_t headDim) { return headDim == 16 || headDim == 32 || headDim == 64 || headDim == 128; }

void launchFlashAttention(void* out, const void* q, const void* k, const void* v, int64_t batch, int64_t seq, int64_t heads, int64_t group,
                          int64_t headDim, int64_t window, float scale, cudaStream_t stream) {
  if (batch * seq == 0) return;
  switch (headDim) {
    case 16: launch<16>(out, q, k, v, batch, seq, heads, group, window, scale, stream); break;
    case 32: launch<32>(out, q, k, v, batch, seq, heads, group, window, scale, stream); break;
    case 64: launch<64>(out, q, k, v, batch, seq, heads, group, window, scale, stream); break;
    case 128: launch<128>(out, q, k, v, batch, seq, heads, group, window, scale, stream); break;
    default: throw NativeError("flashAttention: head dimension " + std::to_string(headDim) + " is not built (16, 32, 64, 128)");
  }
}
