// The CUDA operations' handles (tensor/cuda-nn.ts, cuda-parameters.ts): activations,
// vectors and weights as device allocations (or views of one) with their shapes and dtypes.
import type { CudaNative, NativeBuffer } from './cuda-addon';
import { CudaAllocation } from './cuda-allocation';
import type { NnTensor, NnVector, NnWeight } from './nn';

export class CudaTensor extends CudaAllocation implements NnTensor {
  constructor(
    native: CudaNative,
    buf: NativeBuffer,
    readonly rows: number,
    readonly cols: number,
    /** NATIVE_DTYPES code. */
    readonly type: number,
  ) {
    super(native, buf);
  }
}

export class CudaVector extends CudaAllocation implements NnVector {
  constructor(
    native: CudaNative,
    buf: NativeBuffer,
    readonly length: number,
  ) {
    super(native, buf);
  }
}

export class DenseWeight extends CudaAllocation implements NnWeight {
  constructor(
    native: CudaNative,
    buf: NativeBuffer,
    readonly rows: number,
    readonly cols: number,
    readonly type: number,
    readonly bytes: number,
  ) {
    super(native, buf);
  }
}

export class PackedWeight implements NnWeight {
  constructor(
    readonly codes: CudaAllocation,
    readonly absmax: CudaAllocation,
    readonly levels: CudaAllocation,
    readonly levelCount: number,
    readonly bits: number,
    readonly blockSize: number,
    readonly rows: number,
    readonly cols: number,
    readonly bytes: number,
  ) {}
  get live(): boolean {
    return this.codes.live;
  }
  dispose(): void {
    this.codes.dispose();
    this.absmax.dispose();
    this.levels.dispose();
  }
}
