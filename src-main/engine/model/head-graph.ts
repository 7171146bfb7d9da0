// The model's head: final RMSNorm and lm_head, returning either the logits [T, V] or, for
// perplexity, only the negative log-likelihood of given next tokens [T] (so a 32k-vocab
// window never crosses into JS as logits).
import type { ModelConfig } from '../io/hf-config';
import { OnnxGraph } from '../tensor/onnx-graph';

export type HeadOutput = 'logits' | 'nll';

export function buildHeadGraph(config: ModelConfig, output: HeadOutput): OnnxGraph {
  const H = config.hiddenSize;
  const g = new OnnxGraph(`head_${output}`);
  g.input('x', 'float32', ['T', H]);
  g.input('norm', 'float32', [H]);
  g.input('lm_head', 'float32', ['V', H]);
  const meanSq = g.op('ReduceMean', [g.op('Mul', ['x', 'x'])], { axes: [-1], keepdims: 1 });
  const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSq, g.constant('float32', [], [config.rmsNormEps])])])]);
  const normed = g.op('Mul', [g.op('Mul', ['x', inv]), 'norm']);
  if (output === 'logits') {
    g.op('Gemm', [normed, 'lm_head'], { transB: 1 }, 'logits');
    g.output('logits', 'float32', ['T', 'V']);
    return g;
  }
  g.input('targets', 'int64', ['T']);
  const logits = g.op('Gemm', [normed, 'lm_head'], { transB: 1 });
  const logProbs = g.op('LogSoftmax', [logits], { axis: -1 });
  const picked = g.op('GatherElements', [logProbs, g.op('Unsqueeze', ['targets', g.constant('int64', [1], [1])])], { axis: 1 });
  g.op('Neg', [g.op('Squeeze', [picked, g.constant('int64', [1], [1])])], {}, 'nll');
  g.output('nll', 'float32', ['T']);
  return g;
}
