// The CUDA backend of the neural-network operations (tensor/nn.ts), over the addon's
// transformer kernels and cuBLAS. Every call enqueues on the one compute stream and returns;
// only rowNll and logits wait, for their results. Scratch buffers (a dequantized weight, a
// block of attention scores) are stream-ordered allocations freed as soon as they are
// enqueued for the last time, so a layer's working set is one matrix, not the model.
import { UserError } from '../errors';
import { NATIVE_DTYPES, type CudaNative, type NativeBuffer } from './cuda-addon';
import type { AttentionShape, ComputePrecision, LinearWeights, NeuralOptions, NeuralOps, NnTensor, NnVector, NnWeight, PackedMatrix } from './nn';

const F32 = NATIVE_DTYPES.F32;
const BF16 = NATIVE_DTYPES.BF16;

/** Default bounds (NeuralOptions): one block of attention scores + probabilities, one of logits, bytes. */
const SCORE_BLOCK_BYTES = 256 * 2 ** 20;
const LOGIT_BLOCK_BYTES = 256 * 2 ** 20;
/** Head sizes of the fused bf16 attention kernel (native/src/flash-attention.cu), chosen with NeuralOptions.attention = 'fused'. */
const FLASH_HEAD_DIMS = [16, 32, 64, 128];

class Allocation {
  private freed = false;
  constructor(
    private readonly native: CudaNative,
    readonly buf: NativeBuffer,
  ) {}
  dispose(): void {
    if (this.freed) return;
    this.freed = true;
    this.native.free(this.buf);
  }
  get live(): boolean {
    return !this.freed;
  }
}

class CudaTensor extends Allocation implements NnTensor {
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

class CudaVector extends Allocation implements NnVector {
  constructor(
    native: CudaNative,
    buf: NativeBuffer,
    readonly length: number,
  ) {
    super(native, buf);
  }
}

class DenseWeight extends Allocation implements NnWeight {
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

class PackedWeight implements NnWeight {
  constructor(
    readonly codes: Allocation,
    readonly absmax: Allocation,
    readonly levels: Allocation,
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

function check<T extends { live: boolean }>(t: unknown, kind: new (...args: never[]) => T, what: string): T {
  if (!(t instanceof kind)) throw new Error(`${what} of another device was passed to the CUDA operations`);
  if (!t.live) throw new Error(`${what} was used after dispose()`);
  return t;
}

const tensor = (t: NnTensor) => check(t, CudaTensor, 'an activation');
const vector = (v: NnVector) => check(v, CudaVector, 'a vector');

export class CudaNeuralOps implements NeuralOps {
  /** The dtype of product operands. */
  private readonly ct: number;
  private readonly ctBytes: number;
  private readonly scoreBlockBytes: number;
  private readonly logitBlockBytes: number;
  private readonly fusedAttention: boolean;

  constructor(
    private readonly native: CudaNative,
    readonly precision: ComputePrecision,
    private readonly translate: (e: unknown) => unknown,
    options: NeuralOptions = {},
  ) {
    this.ct = precision === 'bf16' ? BF16 : F32;
    this.ctBytes = precision === 'bf16' ? 2 : 4;
    this.scoreBlockBytes = options.scoreBlockBytes ?? SCORE_BLOCK_BYTES;
    this.logitBlockBytes = options.logitBlockBytes ?? LOGIT_BLOCK_BYTES;
    this.fusedAttention = options.attention === 'fused';
  }

  private alloc(bytes: number): NativeBuffer {
    try {
      return this.native.alloc(Math.max(1, bytes));
    } catch (e) {
      throw this.translate(e);
    }
  }

  private act(rows: number, cols: number, type: number): CudaTensor {
    return new CudaTensor(this.native, this.alloc(rows * cols * (type === BF16 ? 2 : 4)), rows, cols, type);
  }

  private uploadF32(data: Float32Array): Allocation {
    const a = new Allocation(this.native, this.alloc(data.byteLength));
    this.native.upload(a.buf, data);
    return a;
  }

  denseWeight(data: Float32Array, rows: number, cols: number): NnWeight {
    if (data.length !== rows * cols) throw new Error(`denseWeight: ${data.length} values for ${rows}x${cols}`);
    const staged = this.uploadF32(data);
    if (this.ct === F32) return new DenseWeight(this.native, staged.buf, rows, cols, F32, data.byteLength);
    try {
      const out = new DenseWeight(this.native, this.alloc(rows * cols * 2), rows, cols, BF16, rows * cols * 2);
      this.native.cast(out.buf, BF16, staged.buf, rows * cols);
      return out;
    } finally {
      staged.dispose();
    }
  }

  packedWeight(m: PackedMatrix, rows: number, cols: number): NnWeight {
    const count = rows * cols;
    if (m.levels.length !== 2 ** m.bits) throw new Error(`packedWeight: ${m.levels.length} levels for ${m.bits}-bit codes (every code must name a level)`);
    if (m.packed.length < Math.ceil((count * m.bits) / 8) || m.absmax.length !== Math.ceil(count / m.blockSize)) throw new Error('packedWeight: codes or absmax do not match the shape');
    const codes = new Allocation(this.native, this.alloc(m.packed.byteLength));
    this.native.upload(codes.buf, m.packed);
    const absmax = this.uploadF32(m.absmax);
    const levels = this.uploadF32(m.levels);
    return new PackedWeight(codes, absmax, levels, m.levels.length, m.bits, m.blockSize, rows, cols, m.packed.byteLength + m.absmax.byteLength);
  }

  vector(data: Float32Array): NnVector {
    const a = this.uploadF32(data);
    return new CudaVector(this.native, a.buf, data.length);
  }

  /** The weight as a product operand: a dense one as it is, a packed one dequantized into scratch. */
  private operand(w: NnWeight): { buf: NativeBuffer; release(): void } {
    if (w instanceof DenseWeight) {
      check(w, DenseWeight, 'a weight');
      if (w.type !== this.ct) throw new Error('a weight of another precision was passed to the CUDA operations');
      return { buf: w.buf, release() {} };
    }
    const p = check(w, PackedWeight, 'a weight');
    const count = p.rows * p.cols;
    const scratch = new Allocation(this.native, this.alloc(count * this.ctBytes));
    this.native.dequantPacked(scratch.buf, this.ct, p.codes.buf, p.absmax.buf, p.levels.buf, p.levelCount, count, p.bits, p.blockSize);
    return { buf: scratch.buf, release: () => scratch.dispose() };
  }

  private requireCompute(x: CudaTensor, what: string): void {
    if (x.type !== this.ct) throw new Error(`${what}: the input must be in the compute precision (${this.precision})`);
  }

  /** Row-major c [m, n] (+)= alpha·a [m, k]·bᵀ (b [n, k]), operands in the compute precision, c of cType. */
  private gemmNT(c: NativeBuffer, cType: number, a: NativeBuffer, b: NativeBuffer, m: number, n: number, k: number, alpha = 1, beta = 0, offsetA = 0): void {
    this.native.gemmTyped(c, cType, a, b, this.ct, m, n, k, false, true, false, alpha, beta, 1, 0, 0, 0, offsetA, 0, 0);
  }

  embed(table: NnWeight, ids: Int32Array): NnTensor {
    const t = check(table, DenseWeight, 'an embedding table');
    const idBuf = new Allocation(this.native, this.alloc(ids.byteLength));
    try {
      this.native.upload(idBuf.buf, ids);
      const out = this.act(ids.length, t.cols, F32);
      this.native.embedRows(out.buf, t.buf, t.type, idBuf.buf, ids.length, t.cols, t.rows);
      return out;
    } finally {
      idBuf.dispose();
    }
  }

  rmsNorm(x: NnTensor, w: NnVector, eps: number): NnTensor {
    const xt = tensor(x);
    if (xt.type !== F32) throw new Error('rmsNorm: the input is the float32 residual stream');
    const out = this.act(xt.rows, xt.cols, this.ct);
    this.native.rmsNorm(out.buf, this.ct, xt.buf, vector(w).buf, xt.rows, xt.cols, eps);
    return out;
  }

  linear(x: NnTensor, w: LinearWeights, output: 'f32' | 'compute' = 'f32'): NnTensor {
    const xt = tensor(x);
    this.requireCompute(xt, 'linear');
    if (w.weight.cols !== xt.cols) throw new Error(`linear: input has ${xt.cols} columns, the weight ${w.weight.cols}`);
    // A bias is added in float32, so a biased product stays float32.
    const outType = output === 'compute' && !w.bias ? this.ct : F32;
    const out = this.act(xt.rows, w.weight.rows, outType);
    const W = this.operand(w.weight);
    try {
      this.gemmNT(out.buf, outType, xt.buf, W.buf, xt.rows, w.weight.rows, xt.cols);
    } finally {
      W.release();
    }
    if (w.bias) this.native.addBias(out.buf, vector(w.bias).buf, xt.rows, w.weight.rows);
    if (w.lora) {
      const { a, b, scaling } = w.lora;
      const r = a.rows;
      const A = this.operand(a);
      const B = this.operand(b);
      const down = this.act(xt.rows, r, F32);
      try {
        this.gemmNT(down.buf, F32, xt.buf, A.buf, xt.rows, r, xt.cols);
        let mid = down;
        if (this.ct !== F32) {
          mid = this.act(xt.rows, r, this.ct);
          this.native.cast(mid.buf, this.ct, down.buf, xt.rows * r);
        }
        this.gemmNT(out.buf, outType, mid.buf, B.buf, xt.rows, w.weight.rows, r, scaling, 1);
        if (mid !== down) mid.dispose();
      } finally {
        down.dispose();
        A.release();
        B.release();
      }
    }
    return out;
  }

  attention(q: NnTensor, k: NnTensor, v: NnTensor, s: AttentionShape): NnTensor {
    const [qt, kt, vt] = [tensor(q), tensor(k), tensor(v)];
    const { batch: B, seq: S, heads: nH, kvHeads: nKV, headDim: hd } = s;
    if (qt.rows !== B * S || qt.cols !== nH * hd || kt.cols !== nKV * hd || vt.cols !== nKV * hd) throw new Error('attention: q, k, v do not match the shape');
    if (nH % nKV !== 0) throw new UserError(`num_attention_heads ${nH} is not a multiple of num_key_value_heads ${nKV}`);
    const group = nH / nKV;
    const ct = this.ct;
    const heads = (x: CudaTensor, n: number, repeat: number, rotate: boolean) => {
      const out = this.act(B * n * repeat * S, hd, ct);
      this.native.ropeHeads(out.buf, ct, x.buf, x.type, n * hd, 0, B, S, n, hd, repeat, rotate ? vector(s.cos).buf : null, rotate ? vector(s.sin).buf : null);
      return out;
    };
    if (this.fusedAttention && ct === BF16 && FLASH_HEAD_DIMS.includes(hd)) {
      // The fused kernel: K/V heads shared by their query group, no score matrix at all.
      const Q = heads(qt, nH, 1, true);
      const K = heads(kt, nKV, 1, true);
      const V = heads(vt, nKV, 1, false);
      try {
        const out = this.act(B * S, nH * hd, ct);
        this.native.flashAttention(out.buf, Q.buf, K.buf, V.buf, B, S, nH, group, hd, s.window, 1 / Math.sqrt(hd));
        return out;
      } finally {
        Q.dispose();
        K.dispose();
        V.dispose();
      }
    }
    const Q = heads(qt, nH, 1, true);
    const K = heads(kt, nKV, group, true);
    const V = heads(vt, nKV, group, false);
    const O = this.act(B * nH * S, hd, F32);
    try {
      const batch = B * nH;
      // Queries in blocks of `rows` so that one block's scores and probabilities stay bounded.
      const perRow = batch * S * (4 + this.ctBytes);
      const block = Math.max(1, Math.min(S, Math.floor(this.scoreBlockBytes / perRow)));
      const scores = this.act(batch * block, S, F32);
      const probs = this.act(batch * block, S, ct);
      try {
        for (let q0 = 0; q0 < S; q0 += block) {
          const rows = Math.min(block, S - q0);
          const keys = q0 + rows;
          this.native.gemmTyped(scores.buf, F32, Q.buf, K.buf, ct, rows, keys, hd, false, true, false, 1 / Math.sqrt(hd), 0, batch, S * hd, S * hd, rows * keys, q0 * hd, 0, 0);
          this.native.causalSoftmax(probs.buf, ct, scores.buf, batch, rows, keys, q0, s.window);
          this.native.gemmTyped(O.buf, F32, probs.buf, V.buf, ct, rows, hd, keys, false, false, false, 1, 0, batch, rows * keys, S * hd, S * hd, 0, 0, q0 * hd);
        }
      } finally {
        scores.dispose();
        probs.dispose();
      }
      const out = this.act(B * S, nH * hd, ct);
      this.native.mergeHeads(out.buf, ct, O.buf, B, nH, S, hd);
      return out;
    } finally {
      Q.dispose();
      K.dispose();
      V.dispose();
      O.dispose();
    }
  }

  swiglu(gate: NnTensor, up: NnTensor): NnTensor {
    const [g, u] = [tensor(gate), tensor(up)];
    if (g.rows !== u.rows || g.cols !== u.cols || g.type !== u.type) throw new Error('swiglu: gate and up must be of one shape and type');
    const out = this.act(g.rows, g.cols, this.ct);
    this.native.swiglu(out.buf, this.ct, g.buf, u.buf, g.type, g.rows * g.cols);
    return out;
  }

  addInto(y: NnTensor, x: NnTensor): void {
    const [yt, xt] = [tensor(y), tensor(x)];
    if (yt.rows !== xt.rows || yt.cols !== xt.cols || yt.type !== F32 || xt.type !== F32) throw new Error('addInto: float32 tensors of one shape');
    this.native.addInto(yt.buf, xt.buf, yt.rows * yt.cols);
  }

  /** Runs `each(r0, rows, logitsBuf)` over blocks of rows of x·headᵀ. */
  private async logitBlocks(x: NnTensor, head: NnWeight, each: (r0: number, rows: number, logits: NativeBuffer) => Promise<void> | void): Promise<void> {
    const xt = tensor(x);
    this.requireCompute(xt, 'head');
    const V = head.rows;
    const block = Math.max(1, Math.min(xt.rows, Math.floor(this.logitBlockBytes / (V * 4))));
    const logits = this.act(block, V, F32);
    const W = this.operand(head);
    try {
      for (let r0 = 0; r0 < xt.rows; r0 += block) {
        const rows = Math.min(block, xt.rows - r0);
        this.gemmNT(logits.buf, F32, xt.buf, W.buf, rows, V, xt.cols, 1, 0, r0 * xt.cols);
        await each(r0, rows, logits.buf);
      }
    } finally {
      W.release();
      logits.dispose();
    }
  }

  async rowNll(x: NnTensor, head: NnWeight, targets: Int32Array): Promise<Float32Array> {
    const n = tensor(x).rows;
    if (targets.length !== n) throw new Error(`rowNll: ${targets.length} targets for ${n} rows`);
    const all = this.act(n, 1, F32);
    const t = new Allocation(this.native, this.alloc(targets.byteLength));
    const part = this.act(n, 1, F32);
    try {
      this.native.upload(t.buf, targets);
      await this.logitBlocks(x, head, (r0, rows, logits) => {
        // The block's targets and results sit at row r0 of the full arrays.
        const tBlock = new Allocation(this.native, this.alloc(rows * 4));
        this.native.copy(tBlock.buf, 0, t.buf, r0 * 4, rows * 4);
        this.native.rowNll(part.buf, logits, tBlock.buf, rows, head.rows);
        this.native.copy(all.buf, r0 * 4, part.buf, 0, rows * 4);
        tBlock.dispose();
      });
      return new Float32Array(await this.native.download(all.buf, n * 4));
    } finally {
      all.dispose();
      part.dispose();
      t.dispose();
    }
  }

  async logits(x: NnTensor, head: NnWeight): Promise<Float32Array> {
    const n = tensor(x).rows;
    const V = head.rows;
    const out = new Float32Array(n * V);
    await this.logitBlocks(x, head, async (r0, rows, logits) => {
      out.set(new Float32Array(await this.native.download(logits, rows * V * 4)), r0 * V);
    });
    return out;
  }

  memoryUsage(): { inUse: number; peak: number } {
    const m = this.native.memory();
    return { inUse: m.inUse, peak: m.peak };
  }

  resetPeak(): void {
    this.native.resetPeak();
  }
}
