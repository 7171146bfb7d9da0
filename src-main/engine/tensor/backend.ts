// The execution backend seen by the algorithms: a few whole-step operations on dense
// matrices. The CPU implementation runs them through onnxruntime-node; a GPU backend
// (WebGPU EP, CUDA addon) implements the same interface.
import type { Matrix } from './matrix';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

export interface LinalgBackend {
  readonly name: string;
  /** op(A)·op(B) in float32. */
  matmul(a: Matrix, b: Matrix, options?: MatmulOptions): Promise<Matrix>;
  /** AᵀA accumulated in float64 (k×k, row-major) for a tall thin A: the small Gram matrices of the SVD. */
  gram(a: Matrix): Promise<Float64Array>;
  /** E = D − B·A (B m×r, A r×n) and ‖E‖²_F; E may reuse `into`'s storage. */
  lowRankResidual(d: Matrix, b: Matrix, a: Matrix, into?: Float32Array): Promise<{ residual: Matrix; sumSquares: number }>;
  dispose(): Promise<void>;
}
