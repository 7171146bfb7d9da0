// Rotary heads: the head-major layout attention works in, forward and backward.
//   ropeHeads         x [batch·seq, n·headDim] (columns from colOffset) → [batch, n·repeat, seq,
//                     headDim], rotated x·cos + rotate_half(x)·sin where cos/sin are given,
//                     each head written `repeat` times (grouped-query attention's shared K/V)
//   ropeHeadsBackward its adjoint: out [batch·seq, heads·headDim] += the head-major gradient,
//                     each head's `repeat` copies summed, rotated back dy·cos + rotᵀ(dy·sin)
//   mergeHeads        head-major [batch, heads, seq, headDim] → rows [batch·seq, heads·headDim]
#include "addon-api.h"
#include "common.cuh"
#include "context.h"

namespace {

using namespace common;

/** What a rotary kernel reads. */
struct RopeArgs {
  const void* in;    // [batch·seq, inStride], heads at columns colOffset + head·headDim
  int inType;        // kF32 or kBF16
  int64_t inStride;
  int64_t colOffset;
  int64_t batch, seq, heads, headDim;
  int64_t repeat;
  const float* cos;  // [seq, headDim]; null: no rotation (V)
  const float* sin;
};

/**
 * Rotary heads one sequence row per block, each thread a pair (d, d + half) of one head: the
 * rotation's two partners are read once, and indices stay 32-bit within a row.
 */
template <typename To, typename Ti>
__global__ void __launch_bounds__(kThreads) ropeHeadsRowKernel(To* out, RopeArgs a) {
  const int64_t row = blockIdx.x;  // b·seq + s
  const int64_t b = row / a.seq, s = row % a.seq;
  const int half = static_cast<int>(a.headDim / 2);
  const int pairs = static_cast<int>(a.heads) * half;
  const Ti* in = static_cast<const Ti*>(a.in) + row * a.inStride + a.colOffset;
  const int64_t outHeads = a.heads * a.repeat;
  for (int p = threadIdx.x; p < pairs; p += kThreads) {
    const int h = p / half, d = p % half;
    const Ti* x = in + static_cast<int64_t>(h) * a.headDim;
    const float x1 = load(x, d), x2 = load(x, d + half);
    float y1 = x1, y2 = x2;
    if (a.cos) {
      const float* c = a.cos + s * a.headDim;
      const float* sn = a.sin + s * a.headDim;
      // x·cos + rotate_half(x)·sin: each product rounded, then summed, as the CPU graph does.
      y1 = __fadd_rn(__fmul_rn(x1, c[d]), __fmul_rn(-x2, sn[d]));
      y2 = __fadd_rn(__fmul_rn(x2, c[d + half]), __fmul_rn(x1, sn[d + half]));
    }
    for (int64_t r = 0; r < a.repeat; r++) {
      To* o = out + ((b * outHeads + h * a.repeat + r) * a.seq + s) * a.headDim;
      store(o, d, y1);
      store(o, d + half, y2);
    }
  }
}

template <typename To>
__global__ void mergeHeadsKernel(To* out, const float* o, int64_t batch, int64_t heads, int64_t seq, int64_t headDim) {
  GRID_STRIDE(i, batch * heads * seq * headDim) {
    const int64_t d = i % headDim;
    const int64_t h = (i / headDim) % heads;
    const int64_t s = (i / (headDim * heads)) % seq;
    const int64_t b = i / (headDim * heads * seq);
    store(out, i, o[((b * heads + h) * seq + s) * headDim + d]);
  }
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

}  // namespace

namespace js {

napi_value ropeHeads(napi_env env, const RopeHeadsArgs& a) {
  requireRange(a.inStride, 1, INT64_MAX, "ropeHeads: inStride");
  requireRange(a.headDim, 2, INT64_MAX, "ropeHeads: headDim");
  requireRange(a.repeat, 1, INT64_MAX, "ropeHeads: repeat");
  if ((a.cos == nullptr) != (a.sin == nullptr)) throw JsError("ropeHeads: cos and sin go together");
  if (a.headDim % 2) throw JsError("ropeHeads: the head dimension must be even");
  if (a.colOffset + a.heads * a.headDim > a.inStride) throw JsError("ropeHeads: the heads run past the input's row");
  RopeArgs r{};
  r.inType = a.inType;
  r.inStride = a.inStride;
  r.colOffset = a.colOffset;
  r.batch = a.batch;
  r.seq = a.seq;
  r.heads = a.heads;
  r.headDim = a.headDim;
  r.repeat = a.repeat;
  checkBytes(a.out, actBytes(r.batch * r.seq * r.heads * r.repeat * r.headDim, a.outType), "ropeHeads out");
  checkBytes(a.input, actBytes(r.batch * r.seq * r.inStride, r.inType), "ropeHeads in");
  if (a.cos) {
    checkBytes(a.cos, actBytes(r.seq * r.headDim, kF32), "ropeHeads cos");
    checkBytes(a.sin, actBytes(r.seq * r.headDim, kF32), "ropeHeads sin");
  }
  r.in = a.input->ptr;
  r.cos = a.cos ? at<float>(a.cos) : nullptr;
  r.sin = a.sin ? at<float>(a.sin) : nullptr;
  const int64_t total = r.batch * r.seq * r.heads * r.headDim;
  if (total == 0) return undefined(env);
  cudaStream_t stream = ctx().stream;
  // One sequence row per block, each thread a pair (d, d + half) of one head (the head dimension is even).
  DISPATCH2(a.outType, r.inType, "ropeHeads", (ropeHeadsRowKernel<T, Ti><<<static_cast<unsigned>(r.batch * r.seq), kThreads, 0, stream>>>(static_cast<T*>(a.out->ptr), r)));
  return undefined(env);
}

napi_value ropeHeadsBackward(napi_env env, const RopeHeadsBackwardArgs& a) {
  requireRange(a.headDim, 2, INT64_MAX, "ropeHeadsBackward: headDim");
  requireRange(a.repeat, 1, INT64_MAX, "ropeHeadsBackward: repeat");
  if ((a.cos == nullptr) != (a.sin == nullptr)) throw JsError("ropeHeadsBackward: cos and sin go together");
  const int64_t batch = a.batch, seq = a.seq, heads = a.heads, hd = a.headDim, repeat = a.repeat;
  checkBytes(a.out, actBytes(batch * seq * heads * hd, kF32), "ropeHeadsBackward out");
  checkBytes(a.d, actBytes(batch * seq * heads * repeat * hd, kF32), "ropeHeadsBackward in");
  if (a.cos) {
    checkBytes(a.cos, actBytes(seq * hd, kF32), "ropeHeadsBackward cos");
    checkBytes(a.sin, actBytes(seq * hd, kF32), "ropeHeadsBackward sin");
  }
  ropeHeadsBackwardKernel<<<gridFor(batch * seq * heads * hd), kThreads, 0, ctx().stream>>>(at<float>(a.out), at<float>(a.d), batch, seq, heads, hd, repeat,
                                                                                             a.cos ? at<float>(a.cos) : nullptr, a.sin ? at<float>(a.sin) : nullptr);
  LAUNCH_CHECK("ropeHeadsBackward");
  return undefined(env);
}

napi_value mergeHeads(napi_env env, const MergeHeadsArgs& a) {
  const int64_t batch = a.batch, heads = a.heads, seq = a.seq, headDim = a.headDim;
  checkBytes(a.out, actBytes(batch * heads * seq * headDim, a.outType), "mergeHeads out");
  checkBytes(a.o, actBytes(batch * heads * seq * headDim, kF32), "mergeHeads in");
  DISPATCH(a.outType, "mergeHeads",
           (mergeHeadsKernel<T><<<gridFor(batch * heads * seq * headDim), kThreads, 0, ctx().stream>>>(static_cast<T*>(a.out->ptr), at<float>(a.o), batch, heads, seq, headDim)));
  return undefined(env);
}

}  // namespace js
