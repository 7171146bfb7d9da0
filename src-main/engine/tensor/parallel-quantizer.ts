// Runs the quantize kernel on every core: the matrix is split at block boundaries, the
// calling thread takes the first part and worker threads the rest. The ORT products of
// LoftQ already use all cores; this makes the JS pass between them do so too.
// Workers get their input by transfer (no shared memory: ORT cannot read SharedArrayBuffer),
// so each step copies the worker parts of x in and of diff/codes out, about 3 bytes moved per
// 8 the kernel touches; W's parts are copied once per matrix.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { HostQuantizer, Quantized } from './host-quantizer';
import { quantizeKernel } from './quantize-kernel';

/** Below this many elements a matrix is quantized on the calling thread alone. */
const MIN_PARALLEL_ELEMENTS = 1 << 20;

const WORKER_SOURCE = `
// Bundlers that keep function names (esbuild's keepNames, as tsx runs) wrap them in __name().
var __name = (f) => f;
const { parentPort } = require('node:worker_threads');
const quantizeKernel = ${quantizeKernel.toString()};
parentPort.on('message', (m) => {
  const prevOut = m.prevCodes ? new Float64Array(1) : null;
  const errSq = quantizeKernel(m.x, m.ref, m.diff, m.codes, m.absmax, m.levels, m.mid, m.lut, m.blockSize, m.prevCodes, m.prevAbsmax, prevOut, m.rule);
  parentPort.postMessage({ errSq, prevSq: prevOut ? prevOut[0] : 0, x: m.x, ref: m.ref, diff: m.diff, codes: m.codes, absmax: m.absmax },
    [m.x.buffer, m.ref.buffer, m.diff.buffer, m.codes.buffer, m.absmax.buffer]);
});
`;

interface Part {
  /** Element range [start, end) of the flattened matrix; block-aligned start. */
  start: number;
  end: number;
  x: Float32Array;
  ref: Float32Array;
  diff: Float32Array;
  codes: Uint8Array;
  absmax: Float32Array;
}

type Reply = Omit<Part, 'start' | 'end'> & { errSq: number; prevSq: number };

/** A previous quantization's parts, read by the worker to measure its error on x. */
interface PreviousPart {
  codes: Uint8Array;
  absmax: Float32Array;
}

class KernelWorker {
  private readonly worker: Worker;
  private pending: { resolve: (r: Reply) => void; reject: (e: unknown) => void } | null = null;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (r: Reply) => {
      const p = this.pending;
      this.pending = null;
      p?.resolve(r);
    });
    this.worker.on('error', (e) => {
      const p = this.pending;
      this.pending = null;
      p?.reject(e);
    });
  }

  run(part: Part, tables: ReturnType<HostQuantizer['tables']>, blockSize: number, prev: PreviousPart | null): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      const { x, ref, diff, codes, absmax } = part;
      const transfer = [x.buffer, ref.buffer, diff.buffer, codes.buffer, absmax.buffer] as ArrayBuffer[];
      if (prev) transfer.push(prev.codes.buffer as ArrayBuffer, prev.absmax.buffer as ArrayBuffer);
      this.worker.postMessage({ x, ref, diff, codes, absmax, ...tables, blockSize, prevCodes: prev?.codes ?? null, prevAbsmax: prev?.absmax ?? null }, transfer);
    });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

/** One matrix's worth of parallel quantization: W's parts stay with the session across steps. */
export class QuantizeSession {
  constructor(
    private readonly quantizer: HostQuantizer,
    private readonly w: Float32Array,
    private readonly workers: KernelWorker[],
    private readonly parts: Part[],
    /** Elements handled on the calling thread: [0, mainEnd). */
    private readonly mainEnd: number,
  ) {}

  /** Same contract as HostQuantizer.quantizeInto(x, q, w, diff, previous). */
  async quantizeInto(x: Float32Array, q: Quantized, diff: Float32Array, previous?: { q: Quantized; out: Float64Array }): Promise<number> {
    const { blockSize } = this.quantizer;
    const tables = this.quantizer.tables();
    const jobs = this.parts.map((part, i) => {
      part.x.set(x.subarray(part.start, part.end));
      // Copies, since the worker takes ownership of what it is sent.
      const prev = previous
        ? { codes: previous.q.codes.slice(part.start, part.end), absmax: previous.q.absmax.slice(part.start / blockSize, Math.ceil(part.end / blockSize)) }
        : null;
      return this.workers[i].run(part, tables, blockSize, prev);
    });
    const mainBlocks = Math.ceil(this.mainEnd / blockSize);
    const mainPrev = previous ? new Float64Array(1) : null;
    let errSq = quantizeKernel(
      x.subarray(0, this.mainEnd),
      this.w.subarray(0, this.mainEnd),
      diff.subarray(0, this.mainEnd),
      q.codes.subarray(0, this.mainEnd),
      q.absmax.subarray(0, mainBlocks),
      tables.levels,
      tables.mid,
      tables.lut,
      blockSize,
      previous ? previous.q.codes.subarray(0, this.mainEnd) : null,
      previous ? previous.q.absmax.subarray(0, mainBlocks) : null,
      mainPrev,
      tables.rule,
    );
    let prevSq = mainPrev ? mainPrev[0] : 0;
    const replies = await Promise.all(jobs);
    replies.forEach((r, i) => {
      const part = this.parts[i];
      Object.assign(part, { x: r.x, ref: r.ref, diff: r.diff, codes: r.codes, absmax: r.absmax });
      diff.set(r.diff, part.start);
      q.codes.set(r.codes, part.start);
      q.absmax.set(r.absmax, part.start / blockSize);
      errSq += r.errSq;
      prevSq += r.prevSq;
    });
    if (previous) previous.out[0] = prevSq;
    return errSq;
  }
}

export class ParallelQuantizer {
  private workers: KernelWorker[] = [];

  constructor(readonly threads = availableParallelism()) {}

  /** Prepares quantization of matrices shaped like `w` (W itself is the diff reference). */
  session(quantizer: HostQuantizer, w: Float32Array): QuantizeSession | null {
    const n = w.length;
    const extra = Math.max(0, this.threads - 1);
    if (extra === 0 || n < MIN_PARALLEL_ELEMENTS) return null;
    while (this.workers.length < extra) this.workers.push(new KernelWorker());
    const { blockSize } = quantizer;
    const blocks = Math.ceil(n / blockSize);
    const per = Math.ceil(blocks / (extra + 1));
    const parts: Part[] = [];
    for (let i = 1; i <= extra; i++) {
      const start = Math.min(n, i * per * blockSize);
      const end = Math.min(n, (i + 1) * per * blockSize);
      if (end <= start) break;
      parts.push({
        start,
        end,
        x: new Float32Array(end - start),
        ref: w.slice(start, end),
        diff: new Float32Array(end - start),
        codes: new Uint8Array(end - start),
        absmax: new Float32Array(Math.ceil((end - start) / blockSize)),
      });
    }
    return new QuantizeSession(quantizer, w, this.workers, parts, Math.min(n, per * blockSize));
  }

  async dispose(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
