// The CUDA backend of the neural-network operations (tensor/nn.ts), over the addon's
// transformer kernels and cuBLAS. Every call enqueues on the one compute stream and returns;
// only rowNll and logits wait, for their results. Scratch buffers (a dequantized weight, a
// block of attention scores) are stream-ordered allocations freed as soon as they are
// enqueued for the last time, so a layer's working set is one matrix, not the model.
import { UserError } from '../errors';
import { NATIVE_DTYPES, type CudaNative, type NativeBuffer } from './cuda-addon';
import { CudaAllocation, liveAs } from './cuda-allocation';
import { CudaParameterBlock } from './cuda-parameters';
import { CudaTensor, CudaVector, DenseWeight, PackedWeight } from './cuda-tensors';
import type { AttentionShape, ComputePrecision, LinearWeights, LoraGradients, NeuralOptions, NeuralOps, NnParameterBlock, NnTensor, NnVector, NnWeight, PackedMatrix } from './nn';

const F32 = NATIVE_DTYPES.F32;
const BF16 = NATIVE_DTYPES.BF16;

/** Default bounds (NeuralOptions): one block of attention scores + probabilities, one of logits, bytes. */
const SCORE_BLOCK_BYTES = 256 * 2 ** 20;
const LOGIT_BLOCK_BYTES = 256 * 2 ** 20;
/** Head sizes of the fused bf16 attention kernel (native/src/flash-attention.cu), chosen with NeuralOptions.attention = 'fused'. */
const FLASH_HEAD_DIMS = [16, 32, 64, 128];

const check = <T extends { live: boolean }>(t: unknown, kind: new (...args: never[]) => T, what: string): T => liveAs(t, kind, what, 'CUDA operations');

const tensor = (t: NnTensor) => check(t, CudaTensor, 'an activation');
/** A float32 activation (gradients are float32). */
function f32(t: NnTensor, what: string): CudaTensor {
  const c = tensor(t);
  if (c.type !== F32) throw new Error(`${what}: a float32 tensor is needed`);
  return c;
}
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
    this.fusedAttention = options.attention !== 'blocked';
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

  private uploadF32(data: Float32Array): CudaAllocation {
    const a = new CudaAllocation(this.native, this.alloc(data.byteLength));
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
    const codes = new CudaAllocation(this.native, this.alloc(m.packed.byteLength));
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
    const scratch = new CudaAllocation(this.native, this.alloc(count * this.ctBytes));
    this.native.dequantPacked(scratch.buf, this.ct, p.codes.buf, p.absmax.buf, p.levels.buf, p.levelCount, count, p.bits, p.blockSize);
    return { buf: scratch.buf, release: () => scratch.dispose() };
  }

  private requireCompute(x: CudaTensor, what: string): void {
    if (x.type !== this.ct) throw new Error(`${what}: the input must be in the compute precision (${this.precision})`);
  }

  /** Row-major c [m, n] (+)= alpha·a [m, k]·bᵀ (b [n, k]), operands in the compute precision, c of cType. */
  private gemmNT(c: NativeBuffer, cType: number, a: NativeBuffer, b: NativeBuffer, m: number, n: number, k: number, alpha = 1, beta = 0, offsetA = 0): void {
    this.native.gemmTyped({ c, cType, a, b, abType: this.ct, m, n, k, transB: true, alpha, beta, offsetA });
  }

  embed(table: NnWeight, ids: Int32Array): NnTensor {
    const t = check(table, DenseWeight, 'an embedding table');
    const idBuf = new CudaAllocation(this.native, this.alloc(ids.byteLength));
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

  /** x [batch·seq, n·headDim] as head-major [batch, n·repeat, seq, headDim] in the compute precision, rotated when asked. */
  private headMajor(x: CudaTensor, s: AttentionShape, n: number, repeat: number, rotate: boolean): CudaTensor {
    const { batch: B, seq: S, headDim: hd } = s;
    const out = this.act(B * n * repeat * S, hd, this.ct);
    this.native.ropeHeads({ out: out.buf, outType: this.ct, input: x.buf, inType: x.type, inStride: n * hd, colOffset: 0, batch: B, seq: S, heads: n, headDim: hd, repeat, cos: rotate ? vector(s.cos).buf : null, sin: rotate ? vector(s.sin).buf : null });
    return out;
  }

  attention(q: NnTensor, k: NnTensor, v: NnTensor, s: AttentionShape): NnTensor {
    const [qt, kt, vt] = [tensor(q), tensor(k), tensor(v)];
    const { batch: B, seq: S, heads: nH, kvHeads: nKV, headDim: hd } = s;
    if (qt.rows !== B * S || qt.cols !== nH * hd || kt.cols !== nKV * hd || vt.cols !== nKV * hd) throw new Error('attention: q, k, v do not match the shape');
    if (nH % nKV !== 0) throw new UserError(`num_attention_heads ${nH} is not a multiple of num_key_value_heads ${nKV}`);
    const group = nH / nKV;
    const ct = this.ct;
    const heads = (x: CudaTensor, n: number, repeat: number, rotate: boolean) => this.headMajor(x, s, n, repeat, rotate);
    if (this.fusedAttention && ct === BF16 && FLASH_HEAD_DIMS.includes(hd)) {
      // The fused kernel: K/V heads shared by their query group, no score matrix at all.
      const Q = heads(qt, nH, 1, true);
      const K = heads(kt, nKV, 1, true);
      const V = heads(vt, nKV, 1, false);
      try {
        const out = this.act(B * S, nH * hd, ct);
        this.native.flashAttention({ out: out.buf, q: Q.buf, k: K.buf, v: V.buf, batch: B, seq: S, heads: nH, group, headDim: hd, window: s.window, scale: 1 / Math.sqrt(hd) });
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
          this.native.gemmTyped({ c: scores.buf, cType: F32, a: Q.buf, b: K.buf, abType: ct, m: rows, n: keys, k: hd, transB: true, alpha: 1 / Math.sqrt(hd), batch, strideA: S * hd, strideB: S * hd, strideC: rows * keys, offsetA: q0 * hd });
          this.native.causalSoftmax(probs.buf, ct, scores.buf, batch, rows, keys, q0, s.window);
          this.native.gemmTyped({ c: O.buf, cType: F32, a: probs.buf, b: V.buf, abType: ct, m: rows, n: hd, k: keys, batch, strideA: rows * keys, strideB: S * hd, strideC: S * hd, offsetC: q0 * hd });
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
    const out = new Float32Array(n);
    await this.logitBlocks(x, head, async (r0, rows, logits) => {
      const t = this.uploadBlock(targets, r0, rows);
      const nll = this.act(rows, 1, F32);
      try {
        this.native.rowNll(nll.buf, logits, t.buf, rows, head.rows);
        out.set(new Float32Array(await this.native.download(nll.buf, rows * 4)), r0);
      } finally {
        t.dispose();
        nll.dispose();
      }
    });
    return out;
  }

  /** Rows [r0, r0 + rows) of a per-row host array (targets, weights) on the device. */
  private uploadBlock(values: Int32Array | Float32Array, r0: number, rows: number): CudaAllocation {
    const a = new CudaAllocation(this.native, this.alloc(rows * 4));
    this.native.upload(a.buf, values.subarray(r0, r0 + rows));
    return a;
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

  // ---- Training ----

  zeros(rows: number, cols: number): NnTensor {
    const t = this.act(rows, cols, F32);
    this.native.memset(t.buf, 0, rows * cols * 4);
    return t;
  }

  copy(t: NnTensor): NnTensor {
    const src = f32(t, 'copy');
    const out = this.act(src.rows, src.cols, F32);
    this.native.copy(out.buf, 0, src.buf, 0, src.rows * src.cols * 4);
    return out;
  }

  async download(t: NnTensor): Promise<Float32Array> {
    const src = f32(t, 'download');
    return new Float32Array(await this.native.download(src.buf, src.rows * src.cols * 4));
  }

  /** x in the compute precision: itself, or a cast copy the caller frees. */
  private asCompute(x: CudaTensor): { t: CudaTensor; release(): void } {
    if (x.type === this.ct) return { t: x, release() {} };
    const out = this.act(x.rows, x.cols, this.ct);
    this.native.cast(out.buf, this.ct, x.buf, x.rows * x.cols);
    return { t: out, release: () => out.dispose() };
  }

  rmsNormBackward(dn: NnTensor, x: NnTensor, w: NnVector, eps: number, dx: NnTensor): void {
    const [d, xt, out] = [f32(dn, 'rmsNormBackward'), f32(x, 'rmsNormBackward'), f32(dx, 'rmsNormBackward')];
    this.native.rmsNormBackward(out.buf, d.buf, xt.buf, vector(w).buf, xt.rows, xt.cols, eps);
  }

  linearBackward(dy: NnTensor, x: NnTensor, w: LinearWeights, dx: NnTensor, grads?: LoraGradients): void {
    const [dyt, xt, dxt] = [f32(dy, 'linearBackward'), tensor(x), f32(dx, 'linearBackward')];
    const N = dyt.rows, out = w.weight.rows, inp = w.weight.cols;
    if (dyt.cols !== out || dxt.cols !== inp || xt.cols !== inp) throw new Error('linearBackward: shapes do not match the weight');
    const dyc = this.asCompute(dyt);
    const xc = this.asCompute(xt);
    const W = this.operand(w.weight);
    try {
      // dx += dy·W (row-major: [N, out]·[out, in]).
      this.native.gemmTyped({ c: dxt.buf, cType: F32, a: dyc.t.buf, b: W.buf, abType: this.ct, m: N, n: inp, k: out, beta: 1 });
      if (w.lora) {
        const { a, b, scaling: s } = w.lora;
        const r = a.rows;
        const A = this.operand(a);
        const B = this.operand(b);
        const g = this.act(N, r, F32); // dy·B
        const u = this.act(N, r, F32); // x·Aᵀ
        try {
          this.native.gemmTyped({ c: g.buf, cType: F32, a: dyc.t.buf, b: B.buf, abType: this.ct, m: N, n: r, k: out });
          const gc = this.asCompute(g);
          try {
            // dx += s·(dy·B)·A
            this.native.gemmTyped({ c: dxt.buf, cType: F32, a: gc.t.buf, b: A.buf, abType: this.ct, m: N, n: inp, k: r, alpha: s, beta: 1 });
            if (grads) {
              const [dA, dB] = [f32(grads.dA, 'dA'), f32(grads.dB, 'dB')];
              // dA [r, in] += s·(dy·B)ᵀ·x
              this.native.gemmTyped({ c: dA.buf, cType: F32, a: gc.t.buf, b: xc.t.buf, abType: this.ct, m: r, n: inp, k: N, transA: true, alpha: s, beta: 1 });
              this.gemmNT(u.buf, F32, xc.t.buf, A.buf, N, r, inp);
              const uc = this.asCompute(u);
              // dB [out, r] += s·dyᵀ·(x·Aᵀ)
              this.native.gemmTyped({ c: dB.buf, cType: F32, a: dyc.t.buf, b: uc.t.buf, abType: this.ct, m: out, n: r, k: N, transA: true, alpha: s, beta: 1 });
              uc.release();
            }
          } finally {
            gc.release();
          }
        } finally {
          g.dispose();
          u.dispose();
          A.release();
          B.release();
        }
      }
    } finally {
      W.release();
      dyc.release();
      xc.release();
    }
  }

  attentionBackward(q: NnTensor, k: NnTensor, v: NnTensor, dOut: NnTensor, s: AttentionShape): { dq: NnTensor; dk: NnTensor; dv: NnTensor } {
    const [qt, kt, vt, dot] = [tensor(q), tensor(k), tensor(v), f32(dOut, 'attentionBackward')];
    const { batch: B, seq: S, heads: nH, kvHeads: nKV, headDim: hd } = s;
    if (qt.rows !== B * S || qt.cols !== nH * hd || kt.cols !== nKV * hd || vt.cols !== nKV * hd || dot.cols !== nH * hd) throw new Error('attentionBackward: shapes do not match');
    const group = nH / nKV;
    const ct = this.ct;
    const c = 1 / Math.sqrt(hd);
    const cos = vector(s.cos).buf, sin = vector(s.sin).buf;
    const heads = (x: CudaTensor, n: number, repeat: number, rotate: boolean) => this.headMajor(x, s, n, repeat, rotate);
    const Q = heads(qt, nH, 1, true);
    const K = heads(kt, nKV, group, true);
    const V = heads(vt, nKV, group, false);
    const dO = heads(dot, nH, 1, false);
    const batch = B * nH;
    const dQ = this.zeros(batch * S, hd) as CudaTensor;
    const dK = this.zeros(batch * S, hd) as CudaTensor;
    const dV = this.zeros(batch * S, hd) as CudaTensor;
    // Per row of a block: scores, P (fp32), dP (fp32), dS and P in the compute precision.
    const perRow = batch * S * (4 + 4 + 4 + 2 * this.ctBytes);
    const block = Math.max(1, Math.min(S, Math.floor(this.scoreBlockBytes / perRow)));
    const scores = this.act(batch * block, S, F32);
    const P = this.act(batch * block, S, F32);
    const dP = this.act(batch * block, S, F32);
    const dS = this.act(batch * block, S, ct);
    const Pc = ct === F32 ? P : this.act(batch * block, S, ct);
    const g = this.native;
    try {
      for (let q0 = 0; q0 < S; q0 += block) {
        const rows = Math.min(block, S - q0);
        const keys = q0 + rows;
        const sc = rows * keys;
        g.gemmTyped({ c: scores.buf, cType: F32, a: Q.buf, b: K.buf, abType: ct, m: rows, n: keys, k: hd, transB: true, alpha: c, batch, strideA: S * hd, strideB: S * hd, strideC: sc, offsetA: q0 * hd });
        g.causalSoftmax(P.buf, F32, scores.buf, batch, rows, keys, q0, s.window);
        // dP = dO·Vᵀ
        g.gemmTyped({ c: dP.buf, cType: F32, a: dO.buf, b: V.buf, abType: ct, m: rows, n: keys, k: hd, transB: true, batch, strideA: S * hd, strideB: S * hd, strideC: sc, offsetA: q0 * hd });
        g.softmaxBackward(dS.buf, ct, P.buf, dP.buf, batch * rows, keys);
        // dQ rows of this block = c·dS·K
        g.gemmTyped({ c: dQ.buf, cType: F32, a: dS.buf, b: K.buf, abType: ct, m: rows, n: hd, k: keys, alpha: c, batch, strideA: sc, strideB: S * hd, strideC: S * hd, offsetC: q0 * hd });
        // dK[0..keys) += c·dSᵀ·Q_block
        g.gemmTyped({ c: dK.buf, cType: F32, a: dS.buf, b: Q.buf, abType: ct, m: keys, n: hd, k: rows, transA: true, alpha: c, beta: 1, batch, strideA: sc, strideB: S * hd, strideC: S * hd, offsetB: q0 * hd });
        // dV[0..keys) += Pᵀ·dO_block
        if (Pc !== P) g.cast(Pc.buf, ct, P.buf, batch * sc);
        g.gemmTyped({ c: dV.buf, cType: F32, a: Pc.buf, b: dO.buf, abType: ct, m: keys, n: hd, k: rows, transA: true, beta: 1, batch, strideA: sc, strideB: S * hd, strideC: S * hd, offsetB: q0 * hd });
      }
      const dq = this.zeros(B * S, nH * hd) as CudaTensor;
      const dk = this.zeros(B * S, nKV * hd) as CudaTensor;
      const dv = this.zeros(B * S, nKV * hd) as CudaTensor;
      g.ropeHeadsBackward(dq.buf, dQ.buf, B, S, nH, hd, 1, cos, sin);
      g.ropeHeadsBackward(dk.buf, dK.buf, B, S, nKV, hd, group, cos, sin);
      g.ropeHeadsBackward(dv.buf, dV.buf, B, S, nKV, hd, group, null, null);
      return { dq, dk, dv };
    } finally {
      for (const t of [Q, K, V, dO, dQ, dK, dV, scores, P, dP, dS, Pc]) t.dispose();
    }
  }

  swigluBackward(da: NnTensor, gate: NnTensor, up: NnTensor): { dgate: NnTensor; dup: NnTensor } {
    const [d, gt, ut] = [f32(da, 'swigluBackward'), tensor(gate), tensor(up)];
    if (gt.type !== ut.type || gt.rows !== d.rows || gt.cols !== d.cols) throw new Error('swigluBackward: shapes or types do not match');
    const dgate = this.act(d.rows, d.cols, F32);
    const dup = this.act(d.rows, d.cols, F32);
    this.native.swigluBackward(dgate.buf, dup.buf, d.buf, gt.buf, ut.buf, gt.type, d.rows * d.cols);
    return { dgate, dup };
  }

  crossEntropyBackward(normed: NnTensor, head: NnWeight, targets: Int32Array, weights: Float32Array): { dNormed: NnTensor; rowLoss: NnTensor } {
    const nt = tensor(normed);
    this.requireCompute(nt, 'crossEntropyBackward');
    const n = nt.rows, H = nt.cols, V = head.rows;
    if (targets.length !== n || weights.length !== n) throw new Error(`crossEntropyBackward: ${targets.length} targets and ${weights.length} weights for ${n} rows`);
    const dNormed = this.act(n, H, F32);
    const rowLoss = this.act(n, 1, F32);
    const block = Math.max(1, Math.min(n, Math.floor(this.logitBlockBytes / (V * (4 + this.ctBytes)))));
    const logits = this.act(block, V, F32);
    const dz = this.act(block, V, this.ct);
    const t = new CudaAllocation(this.native, this.alloc(n * 4));
    const c = new CudaAllocation(this.native, this.alloc(n * 4));
    const W = this.operand(head);
    try {
      this.native.upload(t.buf, targets);
      this.native.upload(c.buf, weights);
      for (let r0 = 0; r0 < n; r0 += block) {
        const rows = Math.min(block, n - r0);
        this.gemmNT(logits.buf, F32, nt.buf, W.buf, rows, V, H, 1, 0, r0 * H);
        const [tv, cv, lv] = [this.native.view(t.buf, r0 * 4, rows * 4), this.native.view(c.buf, r0 * 4, rows * 4), this.native.view(rowLoss.buf, r0 * 4, rows * 4)];
        this.native.crossEntropyBackward(dz.buf, this.ct, lv, logits.buf, tv, cv, rows, V);
        for (const v of [tv, cv, lv]) this.native.free(v);
        // dNormed rows = dz·head ([rows, V]·[V, H])
        this.native.gemmTyped({ c: dNormed.buf, cType: F32, a: dz.buf, b: W.buf, abType: this.ct, m: rows, n: H, k: V, offsetC: r0 * H });
      }
      return { dNormed, rowLoss };
    } catch (e) {
      dNormed.dispose();
      rowLoss.dispose();
      throw e;
    } finally {
      W.release();
      for (const a of [logits, dz, t, c]) a.dispose();
    }
  }

  parameterBlock(shapes: ReadonlyArray<readonly [number, number]>): NnParameterBlock {
    return new CudaParameterBlock(this.native, shapes, this.ct, (bytes) => this.alloc(bytes));
  }

  memoryUsage(): { inUse: number; peak: number } {
    const m = this.native.memory();
    return { inUse: m.inUse, peak: m.peak };
  }

  resetPeak(): void {
    this.native.resetPeak();
  }
}
