// The neural-network operations a device offers to the model (model/): the pieces of a
// decoder layer and its head, on device-resident activations and weights. A backend that
// implements them (today: CUDA) runs the one layer definition of model/layer.ts eagerly;
// the CPU runs the same definition compiled into an ONNX graph instead.
//
// Precision: 'fp32' is float32 throughout (products in full float32); 'bf16' stores the
// operands of every product (weights and the activations that feed them) in bfloat16 and
// accumulates in float32, while the residual stream, product outputs, norms, softmax and the
// loss stay float32.

export type ComputePrecision = 'fp32' | 'bf16';

/** A row-major [rows, cols] activation on a device. */
export interface NnTensor {
  readonly rows: number;
  readonly cols: number;
  dispose(): void;
}

/** A frozen [rows, cols] weight matrix on a device: dense in the compute precision, or packed codes. */
export interface NnWeight {
  readonly rows: number;
  readonly cols: number;
  /** Device bytes it holds. */
  readonly bytes: number;
  dispose(): void;
}

/** A float32 vector on a device (norm weights, biases, rotary tables). */
export interface NnVector {
  readonly length: number;
  dispose(): void;
}

/** A quantized matrix in its stored form (runs/quantized-file.ts) and its codebook's levels. */
export interface PackedMatrix {
  packed: Uint8Array;
  absmax: Float32Array;
  levels: Float32Array;
  bits: number;
  blockSize: number;
}

export interface LinearWeights {
  weight: NnWeight;
  bias?: NnVector;
  /** A LoRA branch s·(x·Aᵀ)·Bᵀ, A [r, in] and B [out, r]. */
  lora?: { a: NnWeight; b: NnWeight; scaling: number };
}

/** A LoRA branch's factor gradients on the device, float32 [r, in] and [out, r]; linearBackward adds into them. */
export interface LoraGradients {
  dA: NnTensor;
  dB: NnTensor;
}

export interface AttentionShape {
  /** Sequences of `seq` tokens each, stacked: q, k, v have batch·seq rows. */
  batch: number;
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Rotary tables [seq, headDim]. */
  cos: NnVector;
  sin: NnVector;
  /** Keys more than window − 1 positions back are masked; 0: no window. */
  window: number;
}

/** The constants of one AdamW update (train/adamw.ts computes them; a device applies them as they are). */
export interface AdamWConstants {
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  eps: number;
  /** lr / (1 − β1^t) */
  stepSize: number;
  /** √(1 − β2^t) */
  bc2Sqrt: number;
  /** 1 − lr·wd, for the parameters that decay. */
  shrink: number;
}

/** One of the float32 arrays a parameter block keeps per tensor. */
export type ParameterPart = 'value' | 'gradient' | 'expAvg' | 'expAvgSq';

/**
 * Trainable parameters resident on a device: their float32 values, gradients and AdamW's two
 * moments, each one block for all tensors (one launch updates them all), and the values again
 * in the compute precision as product operands.
 */
export interface NnParameterBlock {
  readonly shapes: ReadonlyArray<readonly [number, number]>;
  /** Tensor i as a product operand (a view, valid while the block lives; current after refreshWeights). */
  weight(i: number): NnWeight;
  /** Tensor i's float32 gradient (a view); linearBackward adds into it. */
  gradient(i: number): NnTensor;
  write(part: ParameterPart, i: number, data: Float32Array): void;
  read(part: ParameterPart): Promise<Float32Array[]>;
  zeroGradients(): void;
  /** Σ g² over every gradient, summed in float64 in a fixed order. */
  gradientSumSquares(): Promise<number>;
  /**
   * AdamW over tensors [from, to): each gradient g becomes float32(g / divisor), then
   * float32(g·clip) where clip ≠ 1, then train/adamw.ts's update (shrink applied where `decay`).
   */
  adamw(from: number, to: number, c: AdamWConstants, decay: boolean, divisor: number, clip: number): void;
  /** The product operands from the current values. */
  refreshWeights(): void;
  dispose(): void;
}

/** Choices of a backend's implementation: working-set bounds (bytes; the defaults suit a large GPU) and the attention kernel. */
export interface NeuralOptions {
  /**
   * 'fused' (default): one FlashAttention-style kernel, no score matrix (bf16, head size
   * 16/32/64/128; elsewhere the blocked path); 'blocked': blocks of query rows, scores and
   * probabilities through cuBLAS products (1.2–1.5× slower on an H200, docs/BENCHMARKS.md).
   */
  attention?: 'fused' | 'blocked';
  /** One block of attention scores and probabilities (queries are processed in blocks). */
  scoreBlockBytes?: number;
  /** One block of logits rows (the vocabulary's cross-entropy is computed in row blocks). */
  logitBlockBytes?: number;
}

export interface NeuralOps {
  readonly precision: ComputePrecision;

  /** A dense weight in the compute precision. */
  denseWeight(data: Float32Array, rows: number, cols: number): NnWeight;
  /** A quantized weight kept packed on the device; products dequantize it just in time. */
  packedWeight(m: PackedMatrix, rows: number, cols: number): NnWeight;
  vector(data: Float32Array): NnVector;

  /** Rows of an embedding table [vocab, hidden] (ids checked by the caller), float32. */
  embed(table: NnWeight, ids: Int32Array): NnTensor;
  /** x·(mean(x²) + eps)^(−½)·w per row, in the compute precision. */
  rmsNorm(x: NnTensor, w: NnVector, eps: number): NnTensor;
  /**
   * x·Wᵀ (+ bias) (+ the LoRA branch); x in the compute precision. The result is float32, or
   * with output 'compute' (a product feeding rotary heads or SwiGLU, not the residual stream)
   * in the compute precision where the backend can (it may still give float32).
   */
  linear(x: NnTensor, w: LinearWeights, output?: 'f32' | 'compute'): NnTensor;
  /** Causal multi-head attention with rotary positions and grouped K/V heads, in the compute precision. */
  attention(q: NnTensor, k: NnTensor, v: NnTensor, shape: AttentionShape): NnTensor;
  /** silu(gate)·up, in the compute precision (gate and up as linear made them). */
  swiglu(gate: NnTensor, up: NnTensor): NnTensor;
  /** y += x (float32). */
  addInto(y: NnTensor, x: NnTensor): void;
  /** −log softmax(x·headᵀ)[target] per row of a normed x, the vocabulary in chunks; 0 where target < 0. */
  rowNll(x: NnTensor, head: NnWeight, targets: Int32Array): Promise<Float32Array>;
  /** x·headᵀ per row, to the host [rows, vocab]. */
  logits(x: NnTensor, head: NnWeight): Promise<Float32Array>;
  // ---- Training: gradients through the frozen backbone, float32 ----
  /** A float32 tensor of zeros. */
  zeros(rows: number, cols: number): NnTensor;
  /** A float32 copy of a float32 tensor. */
  copy(t: NnTensor): NnTensor;
  /** A float32 tensor to the host. */
  download(t: NnTensor): Promise<Float32Array>;
  /** dx += ∂/∂x of rmsNorm(x)·w given dn, the gradient of its output. */
  rmsNormBackward(dn: NnTensor, x: NnTensor, w: NnVector, eps: number, dx: NnTensor): void;
  /**
   * Through a frozen linear and its LoRA branch, given dy = ∂L/∂(x·Wᵀ + s·x·Aᵀ·Bᵀ): dx += dy·W +
   * s·(dy·B)·A; with grads, dA += s·(dy·B)ᵀ·x and dB += s·dyᵀ·(x·Aᵀ). x as linear took it.
   */
  linearBackward(dy: NnTensor, x: NnTensor, w: LinearWeights, dx: NnTensor, grads?: LoraGradients): void;
  /** ∂L/∂q, ∂k, ∂v (float32, shaped like q, k, v) of attention(q, k, v) given ∂L/∂output; recomputes the forward. */
  attentionBackward(q: NnTensor, k: NnTensor, v: NnTensor, dOut: NnTensor, shape: AttentionShape): { dq: NnTensor; dk: NnTensor; dv: NnTensor };
  /** ∂L/∂gate and ∂L/∂up of swiglu(gate, up) given ∂L/∂output (float32). */
  swigluBackward(da: NnTensor, gate: NnTensor, up: NnTensor): { dgate: NnTensor; dup: NnTensor };
  /**
   * The head's weighted cross-entropy on the normed final hidden states (compute precision):
   * per row c_t·nll_t of x·headᵀ ([rows, 1], float32, on the device: nothing waits for it) and
   * ∂(Σ_t c_t·nll_t)/∂x (float32); the vocabulary in row blocks.
   */
  crossEntropyBackward(normed: NnTensor, head: NnWeight, targets: Int32Array, weights: Float32Array): { dNormed: NnTensor; rowLoss: NnTensor };

  /** Zeroed parameters of these shapes (values, gradients, moments), to be written before use. */
  parameterBlock(shapes: ReadonlyArray<readonly [number, number]>): NnParameterBlock;

  /** Bytes of device memory in use now and at most since the last resetPeak. */
  memoryUsage(): { inUse: number; peak: number };
  resetPeak(): void;
}
