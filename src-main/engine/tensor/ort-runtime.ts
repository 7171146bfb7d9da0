// onnxruntime-node sessions built from OnnxGraph models, cached by a caller-chosen key so
// that a graph is compiled once per process and reused for every matrix of its kind. The only
// place that knows ORT's types: callers (the CPU device, model/, grad/) feed and read plain
// host tensors, so nothing above the tensor layer depends on the backend.
import * as ort from 'onnxruntime-node';
import type { OnnxGraph } from './onnx-graph';

export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda';

export interface RuntimeOptions {
  provider: ExecutionProvider;
  /** Intra-op threads; 0 lets ORT use every core. */
  threads: number;
}

/** A graph input or output in host memory: its elements (row-major) and dimensions. */
export interface HostTensor {
  readonly data: Float32Array | Float64Array | BigInt64Array;
  readonly dims: readonly number[];
}
export type HostTensors = Record<string, HostTensor>;

export function hostTensor(data: Float32Array | Float64Array | BigInt64Array, dims: readonly number[]): HostTensor {
  return { data, dims };
}

/** A compiled graph: named host tensors in, named host tensors out. */
export interface CompiledGraph {
  run(feeds: HostTensors): Promise<HostTensors>;
}

function toOrt(t: HostTensor): ort.Tensor {
  const type = t.data instanceof Float32Array ? 'float32' : t.data instanceof Float64Array ? 'float64' : 'int64';
  return new ort.Tensor(type, t.data, [...t.dims]);
}

async function runSession(session: ort.InferenceSession, feeds: HostTensors): Promise<HostTensors> {
  const inputs: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) inputs[name] = toOrt(t);
  // ORT's outputs carry .data and .dims already; the graphs here output only these element types.
  return (await session.run(inputs)) as unknown as HostTensors;
}

export class OrtRuntime {
  private sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(readonly options: RuntimeOptions = { provider: 'cpu', threads: 0 }) {}

  /** The graph compiled once under `key`. */
  async compile(key: string, build: () => OnnxGraph): Promise<CompiledGraph> {
    const session = await this.session(key, build);
    return { run: (feeds) => runSession(session, feeds) };
  }

  private session(key: string, build: () => OnnxGraph): Promise<ort.InferenceSession> {
    let s = this.sessions.get(key);
    if (!s) {
      const model = build().serialize();
      s = ort.InferenceSession.create(model, {
        executionProviders: [this.options.provider],
        intraOpNumThreads: this.options.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        enableCpuMemArena: true,
        // Spinning worker threads of one session steal the cores the next session's run
        // needs (measured: a product after another session's run took 2× as long on 2 cores).
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  async run(key: string, build: () => OnnxGraph, feeds: HostTensors): Promise<HostTensors> {
    return runSession(await this.session(key, build), feeds);
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release();
  }
}

/** The ORT version this build runs (for run records). */
export function ortVersion(): string {
  return ort.env.versions?.common ?? 'unknown';
}
