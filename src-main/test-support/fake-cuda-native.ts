// A JavaScript model of the addon's transformer kernels and typed products (the ops of
// native/src/: blas.cpp, rms-norm.cu, rope.cu, attention.cu, flash-attention.cu, swiglu.cu,
// cross-entropy.cu, dequantize.cu, optimizer.cu, …), with the same arguments, layouts,
// strides, offsets and bf16 rounding: it lets the CPU suite test the CUDA operations'
// bookkeeping (tensor/cuda-nn.ts) — which buffer goes where, at which offset and stride — that
// the GPU machine then runs on the real kernels. Sizes are checked as the addon checks them.
// Every function here has its CudaNative signature (tensor/cuda-addon-api.test.ts checks names
// and arity); a kernel changed in native/src is changed here in the same commit.
import { ADDON_ABI_VERSION, type AdamWArgs, type CudaNative, type FlashAttentionArgs, type GemmTypedArgs, type NativeBuffer, type RopeHeadsArgs } from '../engine/tensor/cuda-addon';

const F32 = 0;
const BF16 = 2;

interface FakeBuffer extends NativeBuffer {
  /** Its bytes (a view's lie inside its allocation's). */
  mem: Uint8Array;
  freed: boolean;
  /** A view's allocation. */
  parent?: FakeBuffer;
}

/** The bytes of a live buffer. */
function mem(b: NativeBuffer): Uint8Array {
  const fb = b as FakeBuffer;
  if (fb.freed || fb.parent?.freed) throw new Error('a freed buffer was used');
  return fb.mem;
}

const int32s = (b: NativeBuffer) => {
  const m = mem(b);
  return new Int32Array(m.buffer, m.byteOffset, m.byteLength >> 2);
};

function bf16Round(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  if (Number.isNaN(v)) return v;
  const lsb = (u[0] >> 16) & 1;
  u[0] = ((u[0] + 0x7fff + lsb) >>> 16) << 16;
  return f[0];
}

/** Element access of a buffer as float32 or bfloat16 (bf16 stored as its 16 bits). */
function view(b: NativeBuffer, type: number) {
  const m = mem(b);
  if (type === F32) {
    const a = new Float32Array(m.buffer, m.byteOffset, m.byteLength >> 2);
    return { length: a.length, get: (i: number) => a[i], set: (i: number, v: number) => void (a[i] = v) };
  }
  if (type !== BF16) throw new Error(`fake addon: type ${type}`);
  const h = new Uint16Array(m.buffer, m.byteOffset, m.byteLength >> 1);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  return {
    length: h.length,
    get: (i: number) => {
      u[0] = h[i] << 16;
      return f[0];
    },
    set: (i: number, v: number) => {
      f[0] = bf16Round(v);
      h[i] = u[0] >>> 16;
    },
  };
}

function need(b: NativeBuffer, bytes: number, what: string): void {
  const held = mem(b).byteLength;
  if (held < bytes) throw new Error(`${what}: the device buffer holds ${held} bytes, ${bytes} needed`);
}

const size = (type: number) => (type === BF16 ? 2 : 4);

export function fakeCudaNative(): CudaNative & { live(): number } {
  let inUse = 0;
  let peak = 0;
  const live = new Set<FakeBuffer>();
  const native = {
    abiVersion: ADDON_ABI_VERSION,
    live: () => live.size,
    alloc(bytes: number): NativeBuffer {
      const b = { mem: new Uint8Array(bytes), freed: false } as unknown as FakeBuffer;
      live.add(b);
      inUse += bytes;
      peak = Math.max(peak, inUse);
      return b;
    },
    free(buf: NativeBuffer) {
      const b = buf as FakeBuffer;
      if (b.freed) throw new Error('double free');
      b.freed = true;
      if (b.parent) return;
      live.delete(b);
      inUse -= b.mem.byteLength;
    },
    view(buf: NativeBuffer, offset: number, bytes: number): NativeBuffer {
      const base = buf as FakeBuffer;
      const m = mem(base);
      if (base.parent) throw new Error('view: the buffer is itself a view');
      if (offset + bytes > m.byteLength) throw new Error('view: outside the buffer');
      return { mem: m.subarray(offset, offset + bytes), freed: false, parent: base } as unknown as FakeBuffer;
    },
    upload(dst: NativeBuffer, data: ArrayBufferView) {
      need(dst, data.byteLength, 'upload');
      mem(dst).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    },
    async download(src: NativeBuffer, bytes: number): Promise<ArrayBuffer> {
      need(src, bytes, 'download');
      return mem(src).slice(0, bytes).buffer;
    },
    copy(dst: NativeBuffer, dOff: number, src: NativeBuffer, sOff: number, bytes: number) {
      need(dst, dOff + bytes, 'copy');
      need(src, sOff + bytes, 'copy');
      mem(dst).set(mem(src).subarray(sOff, sOff + bytes), dOff);
    },
    memset(buf: NativeBuffer, byte: number, bytes: number) {
      need(buf, bytes, 'memset');
      mem(buf).fill(byte, 0, bytes);
    },
    memory: () => ({ inUse, peak, free: 0, total: 0 }),
    resetPeak() {
      peak = inUse;
    },
    gemmTyped({ c, cType, a, b, abType, m, n, k, transA = false, transB = false, alpha = 1, beta = 0, batch = 1, strideA: sA = 0, strideB: sB = 0, strideC: sC = 0, offsetA: oA = 0, offsetB: oB = 0, offsetC: oC = 0 }: GemmTypedArgs) {
      need(a, (oA + (batch - 1) * sA + m * k) * size(abType), 'gemmTyped A');
      need(b, (oB + (batch - 1) * sB + k * n) * size(abType), 'gemmTyped B');
      need(c, (oC + (batch - 1) * sC + m * n) * size(cType), 'gemmTyped C');
      const [A, B, C] = [view(a, abType), view(b, abType), view(c, cType)];
      for (let z = 0; z < batch; z++) {
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let p = 0; p < k; p++) {
              const av = A.get(oA + z * sA + (transA ? p * m + i : i * k + p));
              const bv = B.get(oB + z * sB + (transB ? j * k + p : p * n + j));
              s += av * bv;
            }
            const idx = oC + z * sC + i * n + j;
            C.set(idx, Math.fround(alpha * s + (beta ? beta * C.get(idx) : 0)));
          }
        }
      }
    },
    embedRows(out: NativeBuffer, table: NativeBuffer, type: number, ids: NativeBuffer, rows: number, hidden: number, vocab: number) {
      need(table, vocab * hidden * size(type), 'embedRows table');
      const [O, T, I] = [view(out, F32), view(table, type), int32s(ids)];
      for (let r = 0; r < rows; r++) for (let c = 0; c < hidden; c++) O.set(r * hidden + c, T.get(I[r] * hidden + c));
    },
    rmsNorm(out: NativeBuffer, type: number, x: NativeBuffer, w: NativeBuffer, rows: number, hidden: number, eps: number) {
      const [O, X, W] = [view(out, type), view(x, F32), view(w, F32)];
      for (let r = 0; r < rows; r++) {
        let ss = 0;
        for (let c = 0; c < hidden; c++) ss += X.get(r * hidden + c) ** 2;
        const inv = Math.fround(1 / Math.sqrt(Math.fround(ss / hidden) + eps));
        for (let c = 0; c < hidden; c++) O.set(r * hidden + c, Math.fround(Math.fround(X.get(r * hidden + c) * inv) * W.get(c)));
      }
    },
    dequantPacked(out: NativeBuffer, type: number, packed: NativeBuffer, absmax: NativeBuffer, levels: NativeBuffer, levelCount: number, count: number, bits: number, blockSize: number) {
      need(packed, Math.ceil((count * bits) / 8), 'dequantPacked codes');
      const [O, P, S, L] = [view(out, type), mem(packed), view(absmax, F32), view(levels, F32)];
      for (let i = 0; i < count; i++) {
        const bit = i * bits;
        let v = P[bit >> 3];
        if ((bit & 7) + bits > 8) v |= P[(bit >> 3) + 1] << 8;
        const code = (v >> (bit & 7)) & ((1 << bits) - 1);
        if (code >= levelCount) throw new Error('code beyond the levels');
        O.set(i, Math.fround(L.get(code) * S.get(Math.floor(i / blockSize))));
      }
    },
    cast(out: NativeBuffer, type: number, input: NativeBuffer, count: number) {
      const [O, I] = [view(out, type), view(input, F32)];
      for (let i = 0; i < count; i++) O.set(i, I.get(i));
    },
    ropeHeads({ out, outType: type, input, inType, inStride, colOffset, batch, seq, heads, headDim: hd, repeat, cos, sin }: RopeHeadsArgs) {
      need(out, batch * seq * heads * repeat * hd * size(type), 'ropeHeads out');
      need(input, batch * seq * inStride * size(inType), 'ropeHeads in');
      const [O, I] = [view(out, type), view(input, inType)];
      const [C, S] = [cos && view(cos, F32), sin && view(sin, F32)];
      const half = hd / 2;
      for (let b = 0; b < batch; b++) for (let s = 0; s < seq; s++) for (let h = 0; h < heads; h++) for (let d = 0; d < hd; d++) {
        const row = (b * seq + s) * inStride + colOffset + h * hd;
        let y = I.get(row + d);
        if (C && S) {
          const partner = d < half ? -I.get(row + d + half) : I.get(row + d - half);
          y = Math.fround(Math.fround(y * C.get(s * hd + d)) + Math.fround(partner * S.get(s * hd + d)));
        }
        for (let r = 0; r < repeat; r++) O.set(((b * heads * repeat + h * repeat + r) * seq + s) * hd + d, y);
      }
    },
    causalSoftmax(p: NativeBuffer, type: number, scores: NativeBuffer, batch: number, rows: number, keys: number, q0: number, window: number) {
      if (q0 + rows > keys) throw new Error('causalSoftmax: q0 + rows > keys');
      need(scores, batch * rows * keys * 4, 'causalSoftmax scores');
      const [P, Sc] = [view(p, type), view(scores, F32)];
      for (let row = 0; row < batch * rows; row++) {
        const q = q0 + (row % rows);
        const lo = window > 0 ? Math.max(0, q - window + 1) : 0;
        let m = -Infinity;
        for (let j = lo; j <= q; j++) m = Math.max(m, Sc.get(row * keys + j));
        let sum = 0;
        for (let j = lo; j <= q; j++) sum += Math.exp(Sc.get(row * keys + j) - m);
        for (let j = 0; j < keys; j++) P.set(row * keys + j, j >= lo && j <= q ? Math.exp(Sc.get(row * keys + j) - m) / sum : 0);
      }
    },
    flashAttention({ out, q, k, v, batch, seq, heads, group, headDim: hd, window, scale }: FlashAttentionArgs) {
      const kvHeads = heads / group;
      need(out, batch * seq * heads * hd * 2, 'flashAttention out');
      need(q, batch * seq * heads * hd * 2, 'flashAttention q');
      need(k, batch * seq * kvHeads * hd * 2, 'flashAttention k');
      need(v, batch * seq * kvHeads * hd * 2, 'flashAttention v');
      const [O, Q, K, V] = [view(out, BF16), view(q, BF16), view(k, BF16), view(v, BF16)];
      for (let b = 0; b < batch; b++) for (let h = 0; h < heads; h++) {
        const qh = (b * heads + h) * seq * hd, kh = (b * kvHeads + Math.floor(h / group)) * seq * hd;
        for (let i = 0; i < seq; i++) {
          const lo = window > 0 ? Math.max(0, i - window + 1) : 0;
          const s: number[] = [];
          for (let j = lo; j <= i; j++) {
            let dot = 0;
            for (let d = 0; d < hd; d++) dot += Q.get(qh + i * hd + d) * K.get(kh + j * hd + d);
            s.push(Math.fround(dot) * scale);
          }
          const m = Math.max(...s);
          const p = s.map((x) => Math.exp(x - m));
          const l = p.reduce((a, x) => a + x, 0);
          for (let d = 0; d < hd; d++) {
            let acc = 0;
            // P is rounded to bf16 for the product, as the kernel does; l is the float sum.
            for (let j = lo; j <= i; j++) acc += bf16Round(p[j - lo]) * V.get(kh + j * hd + d);
            O.set((b * seq + i) * heads * hd + h * hd + d, acc / l);
          }
        }
      }
    },
    mergeHeads(out: NativeBuffer, type: number, o: NativeBuffer, batch: number, heads: number, seq: number, hd: number) {
      const [O, I] = [view(out, type), view(o, F32)];
      for (let b = 0; b < batch; b++) for (let s = 0; s < seq; s++) for (let h = 0; h < heads; h++) for (let d = 0; d < hd; d++) {
        O.set(((b * seq + s) * heads + h) * hd + d, I.get(((b * heads + h) * seq + s) * hd + d));
      }
    },
    swiglu(out: NativeBuffer, type: number, gate: NativeBuffer, up: NativeBuffer, inType: number, count: number) {
      need(gate, count * size(inType), 'swiglu gate');
      const [O, G, U] = [view(out, type), view(gate, inType), view(up, inType)];
      for (let i = 0; i < count; i++) {
        const g = G.get(i);
        O.set(i, Math.fround(Math.fround(g / (1 + Math.exp(-g))) * U.get(i)));
      }
    },
    addBias(y: NativeBuffer, bias: NativeBuffer, rows: number, cols: number) {
      const [Y, B] = [view(y, F32), view(bias, F32)];
      for (let i = 0; i < rows * cols; i++) Y.set(i, Y.get(i) + B.get(i % cols));
    },
    addInto(y: NativeBuffer, x: NativeBuffer, count: number) {
      const [Y, X] = [view(y, F32), view(x, F32)];
      for (let i = 0; i < count; i++) Y.set(i, Y.get(i) + X.get(i));
    },
    rowNll(nll: NativeBuffer, logits: NativeBuffer, targets: NativeBuffer, rows: number, vocab: number) {
      need(logits, rows * vocab * 4, 'rowNll logits');
      const [N, Z, T] = [view(nll, F32), view(logits, F32), int32s(targets)];
      for (let r = 0; r < rows; r++) {
        let m = -Infinity;
        for (let j = 0; j < vocab; j++) m = Math.max(m, Z.get(r * vocab + j));
        let sum = 0;
        for (let j = 0; j < vocab; j++) sum += Math.exp(Z.get(r * vocab + j) - m);
        N.set(r, T[r] < 0 ? 0 : Math.log(sum) + m - Z.get(r * vocab + T[r]));
      }
    },
    rmsNormBackward(dx: NativeBuffer, dn: NativeBuffer, x: NativeBuffer, w: NativeBuffer, rows: number, hidden: number, eps: number) {
      const [DX, DN, X, W] = [view(dx, F32), view(dn, F32), view(x, F32), view(w, F32)];
      for (let r = 0; r < rows; r++) {
        let ss = 0, gx = 0;
        for (let c = 0; c < hidden; c++) {
          const xv = X.get(r * hidden + c);
          ss += xv * xv;
          gx += DN.get(r * hidden + c) * W.get(c) * xv;
        }
        const inv = 1 / Math.sqrt(ss / hidden + eps);
        const k = (inv * inv * inv * gx) / hidden;
        for (let c = 0; c < hidden; c++) DX.set(r * hidden + c, DX.get(r * hidden + c) + inv * DN.get(r * hidden + c) * W.get(c) - X.get(r * hidden + c) * k);
      }
    },
    ropeHeadsBackward(out: NativeBuffer, d: NativeBuffer, batch: number, seq: number, heads: number, hd: number, repeat: number, cos: NativeBuffer | null, sin: NativeBuffer | null) {
      need(d, batch * seq * heads * repeat * hd * 4, 'ropeHeadsBackward in');
      const [O, D] = [view(out, F32), view(d, F32)];
      const [C, S] = [cos && view(cos, F32), sin && view(sin, F32)];
      const half = hd / 2;
      for (let b = 0; b < batch; b++) for (let s = 0; s < seq; s++) for (let h = 0; h < heads; h++) for (let e = 0; e < hd; e++) {
        let acc = 0;
        for (let r = 0; r < repeat; r++) {
          const row = ((b * heads * repeat + h * repeat + r) * seq + s) * hd;
          let g = D.get(row + e);
          if (C && S) g = g * C.get(s * hd + e) + (e < half ? D.get(row + e + half) * S.get(s * hd + e + half) : -D.get(row + e - half) * S.get(s * hd + e - half));
          acc += g;
        }
        const i = ((b * seq + s) * heads + h) * hd + e;
        O.set(i, O.get(i) + acc);
      }
    },
    softmaxBackward(ds: NativeBuffer, type: number, p: NativeBuffer, dp: NativeBuffer, rows: number, keys: number) {
      need(p, rows * keys * 4, 'softmaxBackward p');
      const [DS, P, DP] = [view(ds, type), view(p, F32), view(dp, F32)];
      for (let r = 0; r < rows; r++) {
        let dot = 0;
        for (let j = 0; j < keys; j++) dot += P.get(r * keys + j) * DP.get(r * keys + j);
        for (let j = 0; j < keys; j++) DS.set(r * keys + j, P.get(r * keys + j) * (DP.get(r * keys + j) - dot));
      }
    },
    swigluBackward(dgate: NativeBuffer, dup: NativeBuffer, da: NativeBuffer, gate: NativeBuffer, up: NativeBuffer, inType: number, count: number) {
      const [DG, DU, DA, G, U] = [view(dgate, F32), view(dup, F32), view(da, F32), view(gate, inType), view(up, inType)];
      for (let i = 0; i < count; i++) {
        const g = G.get(i), u = U.get(i), sig = 1 / (1 + Math.exp(-g));
        DU.set(i, DA.get(i) * g * sig);
        DG.set(i, DA.get(i) * u * sig * (1 + g * (1 - sig)));
      }
    },
    crossEntropyBackward(dz: NativeBuffer, type: number, loss: NativeBuffer, logits: NativeBuffer, targets: NativeBuffer, c: NativeBuffer, rows: number, vocab: number) {
      need(logits, rows * vocab * 4, 'crossEntropyBackward logits');
      const [DZ, L, Z, T, C] = [view(dz, type), view(loss, F32), view(logits, F32), int32s(targets), view(c, F32)];
      for (let r = 0; r < rows; r++) {
        const w = C.get(r);
        let m = -Infinity;
        for (let j = 0; j < vocab; j++) m = Math.max(m, Z.get(r * vocab + j));
        let sum = 0;
        for (let j = 0; j < vocab; j++) sum += Math.exp(Z.get(r * vocab + j) - m);
        for (let j = 0; j < vocab; j++) DZ.set(r * vocab + j, w === 0 ? 0 : w * (Math.exp(Z.get(r * vocab + j) - m) / sum - (j === T[r] ? 1 : 0)));
        L.set(r, w === 0 ? 0 : w * (Math.log(sum) + m - Z.get(r * vocab + T[r])));
      }
    },
    adamw({ p, g, m, v, offset, count, beta1: b1, oneMinusBeta1: omb1, beta2: b2, oneMinusBeta2: omb2, eps, stepSize, bc2Sqrt, shrink, divisor, clip }: AdamWArgs) {
      for (const b of [p, g, m, v]) need(b, (offset + count) * 4, 'adamw');
      const [P, G, M, V] = [view(p, F32), view(g, F32), view(m, F32), view(v, F32)];
      for (let i = offset; i < offset + count; i++) {
        let gi = Math.fround(G.get(i) / divisor);
        if (clip !== 1) gi = Math.fround(gi * clip);
        M.set(i, b1 * M.get(i) + omb1 * gi);
        V.set(i, b2 * V.get(i) + omb2 * gi * gi);
        P.set(i, P.get(i) * shrink - (stepSize * M.get(i)) / (Math.sqrt(V.get(i)) / bc2Sqrt + eps));
      }
    },
    async sumSquares(buf: NativeBuffer, count: number): Promise<number> {
      need(buf, count * 4, 'sumSquares');
      const X = view(buf, F32);
      let s = 0;
      for (let i = 0; i < count; i++) s += X.get(i) * X.get(i);
      return s;
    },
  } satisfies Partial<CudaNative> & { live(): number };
  return native as unknown as CudaNative & { live(): number };
}
