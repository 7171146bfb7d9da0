// The head's loss and its backward as one ONNX graph: from the final hidden states x [T, H]
// to the weighted NLL of the next tokens and ∂L/∂x. The head (final norm, lm_head) is frozen.
//   n = rms(x)·w,  z = n·Wᵀ [T, V],  p = softmax(z),  nll_t = logsumexp(z_t) − z_t[y_t]
//   L = Σ_t c_t·nll_t                (c = loss weights [T]: mask / count for a mean NLL)
//   dz = c ⊙ (p − onehot(y)),  dn = dz·W,  dx = ι·(dn⊙w) − x·ι³·mean((dn⊙w) ⊙ x)
// Outputs: `loss` (scalar), `nll` [T] (per position, unweighted) and `dx` [T, H]; with
// `weightGrads` (pretraining) also `lm_head.grad` = dzᵀ·n [V, H] and `norm.grad` = Σ_t dn ⊙ x·ι.
import type { ModelConfig } from '../io/hf-config';
import { OnnxGraph } from '../tensor/onnx-graph';
import type { BackwardOptions } from './decoder-backward-graph';

export function headBackwardKey(config: ModelConfig, options: BackwardOptions = { weightGrads: false }): string {
  return `head-backward:${config.hiddenSize}:${config.rmsNormEps}:${options.weightGrads ? 'full' : 'x'}`;
}

export function buildHeadBackwardGraph(config: ModelConfig, options: BackwardOptions = { weightGrads: false }): OnnxGraph {
  const H = config.hiddenSize;
  const g = new OnnxGraph('head_backward');
  g.input('x', 'float32', ['T', H]);
  g.input('norm', 'float32', [H]);
  g.input('lm_head', 'float32', ['V', H]);
  g.input('targets', 'int64', ['T']);
  g.input('weights', 'float32', ['T']);
  const mul = (a: string, b: string) => g.op('Mul', [a, b]);
  const axis1 = g.constant('int64', [1], [1]);

  const meanSq = g.op('ReduceMean', [mul('x', 'x')], { axes: [-1], keepdims: 1 });
  const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSq, g.constant('float32', [], [config.rmsNormEps])])])]);
  const normed = mul(mul('x', inv), 'norm');
  const logits = g.op('Gemm', [normed, 'lm_head'], { transB: 1 });
  const logProbs = g.op('LogSoftmax', [logits], { axis: -1 });
  const targets = g.op('Unsqueeze', ['targets', axis1]);
  const nll = g.op('Neg', [g.op('Squeeze', [g.op('GatherElements', [logProbs, targets], { axis: 1 }), axis1])], {}, 'nll');
  g.output('nll', 'float32', ['T']);
  g.op('ReduceSum', [mul(nll, 'weights')], { keepdims: 0 }, 'loss');
  g.output('loss', 'float32', []);

  // dz = c ⊙ (softmax − onehot): exp(logProbs) is the softmax; c ⊙ onehot is c scattered into zeros.
  const w = g.op('Unsqueeze', ['weights', axis1]);
  const probs = g.op('Exp', [logProbs]);
  const oneHot = g.op('ScatterElements', [g.op('ConstantOfShape', [g.op('Shape', [logits])]), targets, w], { axis: 1 });
  const dz = g.op('Sub', [mul(probs, w), oneHot]);
  const dn = g.op('Gemm', [dz, 'lm_head']);
  if (options.weightGrads) {
    g.op('Gemm', [dz, normed], { transA: 1 }, 'lm_head.grad');
    g.output('lm_head.grad', 'float32', ['V', H]);
    g.op('ReduceSum', [mul(dn, mul('x', inv)), g.constant('int64', [1], [0])], { keepdims: 0 }, 'norm.grad');
    g.output('norm.grad', 'float32', [H]);
  }
  const gw = mul(dn, 'norm');
  const m = g.op('ReduceMean', [mul(gw, 'x')], { axes: [-1], keepdims: 1 });
  g.op('Mul', [inv, g.op('Sub', [gw, mul(mul('x', mul(inv, inv)), m)])], {}, 'dx');
  g.output('dx', 'float32', ['T', H]);
  return g;
}
