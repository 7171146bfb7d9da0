// The transformer's kernels (everything of a forward pass that is not a cuBLAS product):
// embedding rows, RMSNorm, dequantization of packed codes straight into a product's operand,
// rotary heads, the masked softmax of attention, SwiGLU and the per-row negative
// log-likelihood. Activations that feed a product are float32 or bfloat16 (`outType`, a
// DtypeCode: kF32 or kBF16); everything else (the residual stream, product outputs, norms'
// weights, softmax statistics) is float32. Each launcher enqueues on `stream` and returns.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

/** out[n, :] = float(table[ids[n], :]) for a float32 or bfloat16 table [V, H]. */
void launchEmbedRows(float* out, const void* table, int tableType, const int32_t* ids, int64_t rows, int64_t hidden, cudaStream_t stream);

/** out = (x · 1/√(mean(x²) + eps)) · w per row of x [rows, hidden], in float32, then rounded to outType. */
void launchRmsNorm(void* out, int outType, const float* x, const float* w, int64_t rows, int64_t hidden, float eps, cudaStream_t stream);

/** out[i] = levels[code i] · absmax[i / blockSize] from a little-endian bit stream of `bits`-bit codes. */
void launchDequantPacked(void* out, int outType, const uint8_t* packed, const float* absmax, const float* levels, int levelCount, int64_t count,
                         int bits, int64_t blockSize, cudaStream_t stream);

/** float32 → outType, element by element (round to nearest even for bfloat16). */
void launchCast(void* out, int outType, const float* in, int64_t count, cudaStream_t stream);

struct RopeArgs {
  const void* in;    // [batch·seq, inStride], heads at columns colOffset + head·headDim
  int inType;        // kF32 or kBF16
  int64_t inStride;
  int64_t colOffset;
  int64_t batch, seq, heads, headDim;
  int64_t repeat;    // each head written `repeat` times (grouped-query attention's shared K/V)
  const float* cos;  // [seq, headDim]; null: no rotation (V)
  const float* sin;
};

/** Head-major copy [batch, heads·repeat, seq, headDim] of x, rotated: x·cos + rotate_half(x)·sin. */
void launchRopeHeads(void* out, int outType, const RopeArgs& a, cudaStream_t stream);

/**
 * Causal softmax of a block of attention scores S [batch, rows, keys] (already scaled) for
 * queries at positions q0 … q0 + rows − 1 and keys 0 … keys − 1: key j counts for query q when
 * j ≤ q and (window = 0 or j > q − window); P = softmax over those, 0 elsewhere.
 */
void launchCausalSoftmax(void* p, int pType, const float* scores, int64_t batch, int64_t rows, int64_t keys, int64_t q0, int64_t window,
                         cudaStream_t stream);

/** out [batch·seq, heads·headDim] from head-major o [batch, heads, seq, headDim]. */
void launchMergeHeads(void* out, int outType, const float* o, int64_t batch, int64_t heads, int64_t seq, int64_t headDim, cudaStream_t stream);

/** out = silu(gate) · up, element by element (gate and up of type inType). */
void launchSwiglu(void* out, int outType, const void* gate, const void* up, int inType, int64_t count, cudaStream_t stream);

/** y[r, c] += bias[c]. */
void launchAddBias(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream);

/** y += x. */
void launchAddInto(float* y, const float* x, int64_t count, cudaStream_t stream);

/** nll[r] = logsumexp(logits[r, :]) − logits[r, targets[r]] (0 where targets[r] < 0). */
void launchRowNll(float* nll, const float* logits, const int32_t* targets, int64_t rows, int64_t vocab, cudaStream_t stream);

/** Head sizes the fused attention kernel is built for (others take the blocked path). */
bool flashAttentionSupports(int64_t headDim);

/**
 * Fused causal attention in bfloat16 with float32 softmax statistics and accumulation (online
 * softmax over blocks of 64 keys, tensor-core products): q [batch, heads, seq, headDim],
 * k and v [batch, heads / group, seq, headDim] (query head h reads K/V head h / group), out
 * [batch·seq, heads·headDim]. Keys as in launchCausalSoftmax (j ≤ q, and j > q − window when
 * window > 0). The scores are scaled by `scale`.
 */
void launchFlashAttention(void* out, const void* q, const void* k, const void* v, int64_t batch, int64_t seq, int64_t heads, int64_t group,
                          int64_t headDim, int64_t window, float scale, cudaStream_t stream);

// ---- backward (training), native/src/nn-backward.cu. Gradients are float32. ----

/** dx[r, :] += ι·g − x·ι³·mean(g ⊙ x), g = dn ⊙ w, ι = (mean(x²) + eps)^(−½), per row of x [rows, hidden]. */
void launchRmsNormBackward(float* dx, const float* dn, const float* x, const float* w, int64_t rows, int64_t hidden, float eps, cudaStream_t stream);

/**
 * The adjoint of launchRopeHeads: out [batch·seq, heads·headDim] += the head-major
 * d [batch, heads·repeat, seq, headDim], each head's `repeat` copies summed and, with
 * cos/sin, rotated back: dx = dy·cos + rotᵀ(dy·sin).
 */
void launchRopeHeadsBackward(float* out, const float* d, int64_t batch, int64_t seq, int64_t heads, int64_t headDim, int64_t repeat, const float* cos,
                             const float* sin, cudaStream_t stream);

/** dS = P ⊙ (dP − rowsum(P ⊙ dP)) per row of [rows, keys], in float32 in, dsType out. */
void launchSoftmaxBackward(void* ds, int dsType, const float* p, const float* dp, int64_t rows, int64_t keys, cudaStream_t stream);

/** dgate = da·up·σ(g)·(1 + g·(1 − σ(g))), dup = da·silu(g); gate and up of type inType. */
void launchSwigluBackward(float* dgate, float* dup, const float* da, const void* gate, const void* up, int inType, int64_t count, cudaStream_t stream);

/**
 * The head's cross-entropy per row of logits [rows, vocab]: loss[r] = c[r]·(logsumexp − z[target]),
 * dlogits = c[r]·(softmax − onehot(target)) in dType (rows with c[r] = 0 get zeros).
 */
void launchCrossEntropyBackward(void* dlogits, int dType, float* loss, const float* logits, const int32_t* targets, const float* c, int64_t rows,
                                int64_t vocab, cudaStream_t stream);
