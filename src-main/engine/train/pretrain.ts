// Full-parameter training of a small model from scratch (the demo model's pretraining):
// random initialization of a WeightSet, then the fine-tuning's optimizer step
// (optimizer-step.ts: AdamW, global-norm clipping) over every tensor (embedding, norms,
// projections, lm_head) with warm-up + cosine learning rate, on packed rows of a token stream.
// Gradients come from parameterGradients, one row at a time, each divided by the batch's
// total target count so that their sum is the batch mean's.
import { parseModelConfig } from '../io/hf-config';
import { encodeF32 } from '../io/dtypes';
import { writeSafetensors, type TensorEntry } from '../io/safetensors-write';
import { expectedShape, LLAMA_MODULES, modulePath } from '../io/targets';
import { parameterGradients } from '../grad/parameter-gradients';
import { decoderWeightInputs, decoderSpecOf } from '../model/decoder-graph';
import { Transformer } from '../model/transformer';
import { perplexity } from '../model/perplexity';
import type { LayerWeights, WeightSet } from '../model/weights';
import { OrtRuntime } from '../tensor/ort-runtime';
import { Rng } from '../util/random';
import { HostTrainer } from './host-trainer';
import type { GradientResult, GradientSource } from './trainer';
import { packRows, type PackedRows } from './packing';
import { learningRate } from './schedule';

/** Initializes a Llama-shaped model from a config.json object: N(0, std²) matrices, norms 1. */
export function initWeights(rawConfig: Record<string, unknown>, seed: number, std = 0.02): WeightSet {
  const config = parseModelConfig(rawConfig);
  const { hiddenSize: H, vocabSize: V, numLayers: L } = config;
  const rng = new Rng(seed);
  const normal = (n: number, s: number) => rng.fillNormal(new Float32Array(n), s) as Float32Array;
  const embed = normal(V * H, std);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const tensors = new Map<string, Float32Array>();
    const shapes = new Map<string, number[]>();
    tensors.set('input_layernorm', new Float32Array(H).fill(1));
    shapes.set('input_layernorm', [H]);
    tensors.set('post_attention_layernorm', new Float32Array(H).fill(1));
    shapes.set('post_attention_layernorm', [H]);
    for (const m of LLAMA_MODULES) {
      const [r, c] = expectedShape(m, config);
      // Residual-branch outputs scaled down by 1/√(2L), as GPT-2 does.
      const s = m === 'o_proj' || m === 'down_proj' ? std / Math.sqrt(2 * L) : std;
      tensors.set(m, normal(r * c, s));
      shapes.set(m, [r, c]);
    }
    layers.push({ tensors, shapes });
  }
  const lmHead = config.tieWordEmbeddings ? embed : normal(V * H, std);
  return { config, embed, layers, norm: new Float32Array(H).fill(1), lmHead, lora: null };
}

/** Every tensor of the weight set by its Hugging Face name (the same arrays, not copies). */
export function namedParameters(w: WeightSet): Map<string, Float32Array> {
  const p = new Map<string, Float32Array>([['model.embed_tokens.weight', w.embed]]);
  w.layers.forEach((layer, l) => {
    for (const [key, t] of layer.tensors) p.set(hfName(l, key), t);
  });
  p.set('model.norm.weight', w.norm);
  if (w.lmHead !== w.embed) p.set('lm_head.weight', w.lmHead);
  return p;
}

function hfName(l: number, key: string): string {
  if (key === 'input_layernorm' || key === 'post_attention_layernorm') return `model.layers.${l}.${key}.weight`;
  const [m, suffix] = key.split('.');
  return `${modulePath(l, m as (typeof LLAMA_MODULES)[number])}.${suffix ?? 'weight'}`;
}

/** Shapes by Hugging Face name, for writing. */
export function parameterShapes(w: WeightSet): Map<string, number[]> {
  const { hiddenSize: H, vocabSize: V } = w.config;
  const s = new Map<string, number[]>([['model.embed_tokens.weight', [V, H]]]);
  w.layers.forEach((layer, l) => {
    for (const [key, shape] of layer.shapes) s.set(hfName(l, key), shape);
  });
  s.set('model.norm.weight', [H]);
  if (w.lmHead !== w.embed) s.set('lm_head.weight', [V, H]);
  return s;
}

/** Writes the weights as one safetensors file in `dtype` (BF16 for a Hugging Face bf16 model). */
export async function writeWeights(w: WeightSet, path: string, dtype: 'BF16' | 'F32' = 'BF16'): Promise<void> {
  const shapes = parameterShapes(w);
  const entries: TensorEntry[] = [...namedParameters(w)].map(([name, values]) => ({ name, dtype, shape: shapes.get(name)!, data: encodeF32(values, dtype) }));
  await writeSafetensors(path, entries);
}

export interface PretrainOptions {
  seqLen: number;
  batchRows: number;
  steps: number;
  /** Stop early once this much wall time has passed (the schedule still assumes `steps`). */
  maxSeconds?: number;
  lr: number;
  minLr: number;
  warmup: number;
  weightDecay: number;
  clip: number;
  seed: number;
  /** Evaluate held-out perplexity every this many steps (0: never during training). */
  evalEvery: number;
  /** Tokens of the held-out stream used for the periodic evaluations. */
  evalTokens?: number;
  runtime?: OrtRuntime;
  onLog?: (line: string) => void;
}

export interface PretrainStep {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
}

export interface PretrainResult {
  steps: number;
  seconds: number;
  /** Per step. */
  history: PretrainStep[];
  /** Mean train loss over the last (up to) 20 steps. */
  finalLoss: number;
  evals: Array<{ step: number; ppl: number }>;
}

/**
 * Every parameter's gradient of a micro-batch's mean loss (parameterGradients row by row, each
 * divided by the micro-batch's target count), by Hugging Face name: the demo pretraining's
 * GradientSource for the shared optimizer step.
 */
class FullParameterGradients implements GradientSource {
  private readonly names: string[];
  constructor(
    private readonly w: WeightSet,
    private readonly runtime: OrtRuntime,
  ) {
    this.names = decoderWeightInputs(decoderSpecOf(w));
  }

  async compute(batch: Int32Array[]): Promise<GradientResult> {
    const n = batch[0].length - 1;
    const mask = new Float32Array(n).fill(1);
    const denominator = batch.length * n;
    const grads = new Map<string, Float32Array>([...namedParameters(this.w)].map(([name, p]) => [name, new Float32Array(p.length)]));
    let loss = 0;
    for (const row of batch) {
      const g = await parameterGradients(this.w, row.subarray(0, n), row.subarray(1), mask, { runtime: this.runtime, denominator });
      loss += g.loss;
      addInto(grads.get('model.embed_tokens.weight')!, g.embed);
      g.layers.forEach((layer, l) => {
        for (const name of this.names) addInto(grads.get(hfName(l, name))!, layer.get(name)!);
      });
      addInto(grads.get('model.norm.weight')!, g.norm);
      if (g.lmHead) addInto(grads.get('lm_head.weight')!, g.lmHead);
    }
    return { loss, grads };
  }
}

function addInto(dst: Float32Array, src: Float32Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}

/** Held-out perplexity with the CLI's protocol (window seqLen, stride seqLen/2). */
export async function heldOutPerplexity(w: WeightSet, ids: Int32Array, seqLen: number, runtime?: OrtRuntime): Promise<number> {
  const r = await perplexity(new Transformer(w, runtime), ids, { seqLen, stride: Math.max(1, Math.floor(seqLen / 2)) });
  return r.ppl;
}

/** Trains every parameter of `w` in place on the token stream. */
export async function pretrain(w: WeightSet, trainIds: Int32Array, evalIds: Int32Array | null, o: PretrainOptions): Promise<PretrainResult> {
  const runtime = o.runtime ?? new OrtRuntime({ provider: 'cpu', threads: 0 });
  const log = o.onLog ?? (() => {});
  const rows: PackedRows = packRows(trainIds, o.seqLen, 'the training text');
  const params = namedParameters(w);
  // The fine-tuning loop's host Trainer (the same step: gradients, clipping, AdamW), over every parameter in place.
  const trainer = new HostTrainer(new FullParameterGradients(w, runtime), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: o.weightDecay, noDecay: ['*norm.weight', 'model.embed_tokens.weight', 'lm_head.weight'] });
  await trainer.load(params, null);
  const rng = new Rng(o.seed ^ 0x5eed);
  let order = permutation(rows.count, rng);
  let cursor = 0;
  const evalSlice = evalIds ? evalIds.subarray(0, Math.min(evalIds.length, o.evalTokens ?? evalIds.length)) : null;
  const history: PretrainStep[] = [];
  const evals: Array<{ step: number; ppl: number }> = [];
  const started = performance.now();
  const denominator = o.batchRows * o.seqLen;
  let step = 0;
  while (step < o.steps) {
    if (o.maxSeconds !== undefined && (performance.now() - started) / 1000 >= o.maxSeconds) {
      log(`stopping at step ${step}: the time limit of ${(o.maxSeconds / 60).toFixed(1)} min is reached`);
      break;
    }
    step++;
    const lr = learningRate(step, { peak: o.lr, floor: o.minLr, warmup: o.warmup, total: o.steps, decay: 'cosine' });
    const batch = () =>
      Array.from({ length: o.batchRows }, () => {
        if (cursor >= order.length) {
          order = permutation(rows.count, rng);
          cursor = 0;
        }
        return rows.row(order[cursor++]);
      });
    const { loss, gradNorm: norm, seconds } = await trainer.step(step, { accum: 1, maxGradNorm: o.clip, batch, lr });
    const tokensPerSecond = denominator / seconds;
    history.push({ step, loss, lr, gradNorm: norm, tokensPerSecond });
    if (step === 1 || step % 10 === 0 || step === o.steps) {
      const elapsed = (performance.now() - started) / 1000;
      log(`step ${step}/${o.steps}  loss ${loss.toFixed(4)}  lr ${lr.toExponential(2)}  |g| ${norm.toFixed(3)}  ${tokensPerSecond.toFixed(0)} tok/s  ${elapsed.toFixed(0)} s`);
    }
    if (evalSlice && o.evalEvery > 0 && step % o.evalEvery === 0 && step < o.steps) {
      const ppl = await heldOutPerplexity(w, evalSlice, o.seqLen, runtime);
      evals.push({ step, ppl });
      log(`  held-out perplexity at step ${step}: ${ppl.toFixed(3)} (${evalSlice.length} tokens)`);
    }
  }
  const tail = history.slice(-20);
  return {
    steps: step,
    seconds: (performance.now() - started) / 1000,
    history,
    finalLoss: tail.reduce((s, h) => s + h.loss, 0) / Math.max(1, tail.length),
    evals,
  };
}

function permutation(n: number, rng: Rng): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextUint32() % (i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
