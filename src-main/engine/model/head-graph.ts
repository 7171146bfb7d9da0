// The model's head as ONNX graphs: final RMSNorm and lm_head, returning either the logits
// [T, V] or, for perplexity, only the negative log-likelihood of given next tokens [T] (so a
// 32k-vocab window never crosses into JS as logits); and the head's backward (head.ts compiled
// through graph-ops.ts) for training: inputs x [T, H], norm, lm_head, targets (int64) and
// per-position loss weights c [T]; outputs `nll` [T], `loss` = Σ_t c_t·nll_t and `dx` [T, H],
// with weightGrads also `lm_head.grad` [V, H] and `norm.grad` [H].
import type { ModelConfig } from '../io/hf-config';
import { OnnxGraph } from '../tensor/onnx-graph';
import type { BackwardOptions } from './decoder-graph';
import { GraphOps } from './graph-ops';
import { headBackward } from './head';

export type HeadOutput = 'logits' | 'nll';

function headOps(g: OnnxGraph, config: ModelConfig, weightGrads: boolean): GraphOps {
  g.input('x', 'float32', ['T', config.hiddenSize]);
  g.input('norm', 'float32', [config.hiddenSize]);
  g.input('lm_head', 'float32', ['V', config.hiddenSize]);
  return new GraphOps(g, config, { biases: [], lora: [], loraScaling: 0, weightGrads });
}

export function buildHeadGraph(config: ModelConfig, output: HeadOutput): OnnxGraph {
  const g = new OnnxGraph(`head_${output}`);
  const normed = headOps(g, config, false).rmsNorm('x', 'norm');
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

export function headBackwardKey(config: ModelConfig, options: BackwardOptions = { weightGrads: false }): string {
  return `head-backward:${config.hiddenSize}:${config.rmsNormEps}:${options.weightGrads ? 'full' : 'x'}`;
}

export function buildHeadBackwardGraph(config: ModelConfig, options: BackwardOptions = { weightGrads: false }): OnnxGraph {
  const g = new OnnxGraph('head_backward');
  const ops = headOps(g, config, options.weightGrads);
  g.input('targets', 'int64', ['T']);
  g.input('weights', 'float32', ['T']);
  const { loss, dx } = headBackward(ops, 'x');
  g.output('loss', 'float32', [], loss);
  g.output('dx', 'float32', ['T', config.hiddenSize], dx);
  return g;
}
