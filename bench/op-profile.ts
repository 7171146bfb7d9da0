// Where a GPU pass spends its time, for the benchmarks (no profiler runs on the GPU machine):
// every kernel launch of a CudaNeuralOps is bracketed by timing events on the compute stream
// (the addon's profileMark), and its GPU time is attributed to the NeuralOps method that made
// it and the addon function. Time between brackets is the stream idle, waiting for the host.
// It reaches into the operations' private `native` handle; bench/ only, never the app.
import type { CudaNative, GemmTypedArgs } from '../src-main/engine/tensor/cuda-addon';
import type { NeuralOps } from '../src-main/engine/tensor/nn';

/** The addon functions that enqueue GPU work. */
const LAUNCHES = new Set([
  'gemmTyped', 'embedRows', 'rmsNorm', 'dequantPacked', 'cast', 'ropeHeads', 'causalSoftmax', 'flashAttention', 'mergeHeads', 'swiglu',
  'addBias', 'addInto', 'rowNll', 'rmsNormBackward', 'ropeHeadsBackward', 'softmaxBackward', 'swigluBackward', 'crossEntropyBackward',
  'memset', 'copy', 'upload', 'adamw', 'sumSquares', 'download',
]);

export interface OpProfile {
  /** Wraps nn (a CudaNeuralOps) and returns the wrapper to use in its place. */
  readonly ops: NeuralOps;
  /** Starts recording (drops what was recorded). */
  start(): void;
  /** Stops, waits for the GPU, and sums the brackets: rows sorted by GPU time. */
  stop(): { rows: Array<{ op: string; kernel: string; calls: number; ms: number }>; idleMs: number; totalMs: number };
}

export function profileOps(nn: NeuralOps): OpProfile {
  const holder = nn as unknown as { native: CudaNative };
  const real = holder.native;
  let recording = false;
  let current = 'other';
  const labels: string[] = [];
  const shapeOf = (name: string, args: unknown[]): string => {
    if (name !== 'gemmTyped') return name;
    const { m, n, k, batch = 1 } = args[0] as GemmTypedArgs;
    return batch > 1 ? 'gemm batched (attention)' : `gemm ${m}x${n}x${k}`;
  };
  holder.native = new Proxy(real, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || !LAUNCHES.has(prop) || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (!recording) return (value as (...a: unknown[]) => unknown).apply(target, args);
        real.profileMark();
        const out = (value as (...a: unknown[]) => unknown).apply(target, args);
        real.profileMark();
        labels.push(`${current}\t${shapeOf(prop, args)}`);
        return out;
      };
    },
  });
  const ops = new Proxy(nn, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        const outer = current;
        current = outer === 'other' ? prop : outer;
        try {
          const out = (value as (...a: unknown[]) => unknown).apply(target, args);
          if (out instanceof Promise) return out.finally(() => (current = outer));
          current = outer;
          return out;
        } catch (e) {
          current = outer;
          throw e;
        }
      };
    },
  });
  return {
    ops,
    start() {
      real.profileCollect();
      labels.length = 0;
      recording = true;
    },
    stop() {
      recording = false;
      const ms = real.profileCollect();
      const sums = new Map<string, { calls: number; ms: number }>();
      let idleMs = 0;
      let totalMs = 0;
      for (let i = 0; i < labels.length; i++) {
        const inside = ms[2 * i];
        totalMs += inside;
        const s = sums.get(labels[i]) ?? { calls: 0, ms: 0 };
        s.calls++;
        s.ms += inside;
        sums.set(labels[i], s);
        if (2 * i + 1 < ms.length) {
          idleMs += ms[2 * i + 1];
          totalMs += ms[2 * i + 1];
        }
      }
      const rows = [...sums].map(([k, v]) => {
        const [op, kernel] = k.split('\t');
        return { op, kernel, calls: v.calls, ms: v.ms };
      });
      rows.sort((a, b) => b.ms - a.ms);
      return { rows, idleMs, totalMs };
    },
  };
}

/** The profile as lines: the top rows and the idle time. */
export function formatProfile(p: ReturnType<OpProfile['stop']>, top = 30): string {
  const lines = [`GPU ${p.totalMs.toFixed(1)} ms in brackets + gaps; stream idle between launches ${p.idleMs.toFixed(1)} ms`];
  for (const r of p.rows.slice(0, top)) lines.push(`${r.ms.toFixed(2).padStart(9)} ms ${String(r.calls).padStart(6)}×  ${r.op} / ${r.kernel}`);
  return lines.join('\n');
}
