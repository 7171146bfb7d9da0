// LinalgBackend on onnxruntime-node's CPU execution provider (MLAS kernels). Each
// operation is one small cached graph with symbolic dimensions.
import * as ort from 'onnxruntime-node';
import type { LinalgBackend, MatmulOptions } from './backend';
import { matrix, type Matrix } from './matrix';
import { OnnxGraph } from './onnx-graph';
import { OrtRuntime, floatTensor } from './ort-runtime';

function matmulGraph(transA: boolean, transB: boolean): OnnxGraph {
  const g = new OnnxGraph('matmul');
  g.input('a', 'float32', transA ? ['k', 'm'] : ['m', 'k']);
  g.input('b', 'float32', transB ? ['n', 'k'] : ['k', 'n']);
  g.op('Gemm', ['a', 'b'], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 }, 'c');
  g.output('c', 'float32', ['m', 'n']);
  return g;
}

function gramGraph(): OnnxGraph {
  const g = new OnnxGraph('gram');
  g.input('a', 'float32', ['m', 'k']);
  const a64 = g.op('Cast', ['a'], { to: 11 });
  const at = g.op('Transpose', [a64], { perm: [1, 0] });
  g.op('MatMul', [at, a64], {}, 'g');
  g.output('g', 'float64', ['k', 'k']);
  return g;
}

function residualGraph(): OnnxGraph {
  const g = new OnnxGraph('lowrank_residual');
  g.input('d', 'float32', ['m', 'n']);
  g.input('b', 'float32', ['m', 'r']);
  g.input('a', 'float32', ['r', 'n']);
  const ba = g.op('MatMul', ['b', 'a']);
  g.op('Sub', ['d', ba], {}, 'e');
  // Sum of squares in float64: 10⁷ float32 squares would lose digits.
  const e64 = g.op('Cast', ['e'], { to: 11 });
  g.op('ReduceSumSquare', [e64], { keepdims: 0 }, 'ss');
  g.output('e', 'float32', ['m', 'n']);
  g.output('ss', 'float64', []);
  return g;
}

export class CpuBackend implements LinalgBackend {
  readonly name = 'cpu';
  private readonly runtime: OrtRuntime;

  constructor(threads = 0) {
    this.runtime = new OrtRuntime({ provider: 'cpu', threads });
  }

  async matmul(a: Matrix, b: Matrix, options: MatmulOptions = {}): Promise<Matrix> {
    const transA = options.transA ?? false;
    const transB = options.transB ?? false;
    const [m, ka] = transA ? [a.cols, a.rows] : [a.rows, a.cols];
    const [kb, n] = transB ? [b.cols, b.rows] : [b.rows, b.cols];
    if (ka !== kb) throw new Error(`matmul shape mismatch: ${m}x${ka} · ${kb}x${n}`);
    const key = `matmul:${transA}:${transB}`;
    const out = await this.runtime.run(key, () => matmulGraph(transA, transB), {
      a: floatTensor(a.data, [a.rows, a.cols]),
      b: floatTensor(b.data, [b.rows, b.cols]),
    });
    return matrix(m, n, out.c.data as Float32Array);
  }

  async gram(a: Matrix): Promise<Float64Array> {
    const out = await this.runtime.run('gram', gramGraph, { a: floatTensor(a.data, [a.rows, a.cols]) });
    return out.g.data as Float64Array;
  }

  async lowRankResidual(d: Matrix, b: Matrix, a: Matrix, into?: Float32Array): Promise<{ residual: Matrix; sumSquares: number }> {
    if (b.rows !== d.rows || a.cols !== d.cols || b.cols !== a.rows) {
      throw new Error(`lowRankResidual shape mismatch: ${d.rows}x${d.cols} vs ${b.rows}x${b.cols}·${a.rows}x${a.cols}`);
    }
    const feeds = {
      d: floatTensor(d.data, [d.rows, d.cols]),
      b: floatTensor(b.data, [b.rows, b.cols]),
      a: floatTensor(a.data, [a.rows, a.cols]),
    };
    const fetches: Record<string, ort.Tensor | null> = { ss: null, e: into ? floatTensor(into, [d.rows, d.cols]) : null };
    const session = await this.runtime.session('lowrank_residual', residualGraph);
    const out = await session.run(feeds, fetches as ort.InferenceSession.FetchesType);
    const e = out.e.data as Float32Array;
    return { residual: matrix(d.rows, d.cols, e), sumSquares: Number((out.ss.data as Float64Array)[0]) };
  }

  dispose(): Promise<void> {
    return this.runtime.dispose();
  }
}
