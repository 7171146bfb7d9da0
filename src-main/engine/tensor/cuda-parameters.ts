// Trainable parameters on the GPU (nn.ts NnParameterBlock): four float32 allocations —
// values, gradients, AdamW's first and second moments — holding every tensor at the same
// offsets, and in bf16 mode a fifth with the values as product operands. A tensor's weight
// and gradient are views into them, so the model's LoRA products read the live parameters,
// its backward adds straight into the gradient block, and one launch updates everything.
import { NATIVE_DTYPES, type CudaNative, type NativeBuffer } from './cuda-addon';
import { CudaAllocation } from './cuda-allocation';
import { CudaTensor, DenseWeight } from './cuda-tensors';
import type { AdamWConstants, NnParameterBlock, NnTensor, NnWeight, ParameterPart } from './nn';

const F32 = NATIVE_DTYPES.F32;
const BF16 = NATIVE_DTYPES.BF16;
/** Each tensor starts at a multiple of this many elements (256-byte aligned float32 operands for cuBLAS). */
const ALIGN = 64;

export class CudaParameterBlock implements NnParameterBlock {
  private readonly offsets: number[];
  /** Elements of each float32 block (the tensors and their alignment padding). */
  private readonly count: number;
  private readonly parts: Record<ParameterPart, CudaAllocation>;
  private readonly operands: CudaAllocation | null;
  private readonly weights: DenseWeight[];
  private readonly grads: CudaTensor[];
  private disposed = false;

  constructor(
    private readonly native: CudaNative,
    readonly shapes: ReadonlyArray<readonly [number, number]>,
    computeType: number,
    alloc: (bytes: number) => NativeBuffer,
  ) {
    let at = 0;
    this.offsets = shapes.map(([r, c]) => {
      if (!(Number.isSafeInteger(r) && Number.isSafeInteger(c) && r > 0 && c > 0)) throw new Error(`parameterBlock: a ${r}x${c} tensor`);
      const o = at;
      at += Math.ceil((r * c) / ALIGN) * ALIGN;
      return o;
    });
    this.count = Math.max(at, 1);
    const made: CudaAllocation[] = [];
    const block = (bytes: number) => {
      const a = new CudaAllocation(native, alloc(bytes));
      made.push(a);
      native.memset(a.buf, 0, bytes);
      return a;
    };
    try {
      const bytes = this.count * 4;
      this.parts = { value: block(bytes), gradient: block(bytes), expAvg: block(bytes), expAvgSq: block(bytes) };
      this.operands = computeType === BF16 ? block(this.count * 2) : null;
    } catch (e) {
      for (const a of made) a.dispose();
      throw e;
    }
    const opBuf = this.operands?.buf ?? this.parts.value.buf;
    const opBytes = computeType === BF16 ? 2 : 4;
    this.weights = shapes.map(([r, c], i) => new DenseWeight(native, native.view(opBuf, this.offsets[i] * opBytes, r * c * opBytes), r, c, computeType, r * c * opBytes));
    this.grads = shapes.map(([r, c], i) => new CudaTensor(native, native.view(this.parts.gradient.buf, this.offsets[i] * 4, r * c * 4), r, c, F32));
  }

  private live(): void {
    if (this.disposed) throw new Error('the parameter block was used after dispose()');
  }

  private index(i: number): number {
    this.live();
    if (!Number.isInteger(i) || i < 0 || i >= this.shapes.length) throw new Error(`parameter block: no tensor ${i}`);
    return i;
  }

  weight(i: number): NnWeight {
    return this.weights[this.index(i)];
  }

  gradient(i: number): NnTensor {
    return this.grads[this.index(i)];
  }

  write(part: ParameterPart, i: number, data: Float32Array): void {
    const [r, c] = this.shapes[this.index(i)];
    if (data.length !== r * c) throw new Error(`parameter block: ${data.length} values for a ${r}x${c} tensor`);
    const staged = this.native.view(this.parts[part].buf, this.offsets[i] * 4, data.byteLength);
    this.native.upload(staged, data);
    this.native.free(staged);
  }

  async read(part: ParameterPart): Promise<Float32Array[]> {
    this.live();
    const all = new Float32Array(await this.native.download(this.parts[part].buf, this.count * 4));
    return this.shapes.map(([r, c], i) => all.slice(this.offsets[i], this.offsets[i] + r * c));
  }

  zeroGradients(): void {
    this.live();
    this.native.memset(this.parts.gradient.buf, 0, this.count * 4);
  }

  gradientSumSquares(): Promise<number> {
    this.live();
    return this.native.sumSquares(this.parts.gradient.buf, this.count);
  }

  adamw(from: number, to: number, c: AdamWConstants, decay: boolean, divisor: number, clip: number): void {
    if (from === to) return;
    if (to < from) throw new Error(`parameter block: the range [${from}, ${to}) is reversed`);
    this.index(from);
    this.index(to - 1);
    const start = this.offsets[from];
    const [r, cols] = this.shapes[to - 1];
    const end = this.offsets[to - 1] + r * cols;
    const p = this.parts;
    this.native.adamw({ p: p.value.buf, g: p.gradient.buf, m: p.expAvg.buf, v: p.expAvgSq.buf, offset: start, count: end - start, beta1: c.beta1, oneMinusBeta1: c.oneMinusBeta1, beta2: c.beta2, oneMinusBeta2: c.oneMinusBeta2, eps: c.eps, stepSize: c.stepSize, bc2Sqrt: c.bc2Sqrt, shrink: decay ? c.shrink : 1, divisor, clip });
  }

  refreshWeights(): void {
    this.live();
    if (this.operands) this.native.cast(this.operands.buf, BF16, this.parts.value.buf, this.count);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of [...this.weights, ...this.grads]) t.dispose();
    for (const a of [...Object.values(this.parts), ...(this.operands ? [this.operands] : [])]) a.dispose();
  }
}
