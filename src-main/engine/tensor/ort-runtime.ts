// onnxruntime-node sessions built from OnnxGraph models, cached by a caller-chosen key so
// that a graph is compiled once per process and reused for every matrix of its kind.
import * as ort from 'onnxruntime-node';
import type { OnnxGraph } from './onnx-graph';

export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda';

export interface RuntimeOptions {
  provider: ExecutionProvider;
  /** Intra-op threads; 0 lets ORT use every core. */
  threads: number;
}

export type Feed = Record<string, ort.Tensor>;

export class OrtRuntime {
  private sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(readonly options: RuntimeOptions = { provider: 'cpu', threads: 0 }) {}

  session(key: string, build: () => OnnxGraph): Promise<ort.InferenceSession> {
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

  async run(key: string, build: () => OnnxGraph, feeds: Feed): Promise<ort.InferenceSession.ReturnType> {
    const session = await this.session(key, build);
    return session.run(feeds);
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release();
  }
}

export function floatTensor(data: Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}
