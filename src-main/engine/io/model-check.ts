// The one check of a model's tensors against its config.json, run by every command that reads
// a model (inspect, quantize, profile, eval, and the weight loader behind eval and train):
// every tensor the forward pass reads is there, floating point, and of the shape the config
// implies. It reads headers only, so a wrong or hostile model is refused in one line before
// anything is allocated, never half-way through a run or as an "internal error".
import { UserError } from '../errors';
import { isFloatDtype } from './dtypes';
import type { ModelConfig } from './hf-config';
import { checkEmbeddings, expectedShape, LLAMA_MODULES, modulePath, type WeightIndex } from './targets';

/** What the check needs of a store beyond discovery's index: whether a tensor is there. */
export interface CheckedIndex extends WeightIndex {
  has(name: string): boolean;
}

export function checkModelTensors(weights: CheckedIndex, config: ModelConfig): void {
  const at = weights.dir ? `${weights.dir}: ` : '';
  // `want` null: the shape is checkEmbeddings' rule (targets.ts), the presence and dtype are checked here.
  const check = (name: string, want: number[] | null, optional = false) => {
    if (!weights.has(name)) {
      if (optional) return;
      throw new UserError(`${at}the model has no tensor "${name}" (config.json says ${config.numLayers} layers of ${config.architecture})`);
    }
    const { dtype, shape } = weights.info(name);
    if (!isFloatDtype(dtype)) throw new UserError(`${at}tensor "${name}" has dtype ${dtype}; expected a floating-point weight (is the model already quantized?)`);
    if (want && (shape.length !== want.length || shape.some((d, i) => d !== want[i]))) {
      throw new UserError(`${at}tensor "${name}" has shape [${shape.join(', ')}] but config.json implies [${want.join(', ')}]`);
    }
  };
  // Layers beyond the config's count: the config is not this checkpoint's.
  for (const name of weights.names()) {
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    if (layer && Number(layer[1]) >= config.numLayers) {
      throw new UserError(`${at}the weights have tensor "${name}" but config.json says num_hidden_layers is ${config.numLayers}`);
    }
  }
  checkEmbeddings(weights, config);
  const hidden = [config.hiddenSize];
  check('model.embed_tokens.weight', null);
  check('lm_head.weight', null, true);
  check('model.norm.weight', hidden);
  for (let l = 0; l < config.numLayers; l++) {
    check(`model.layers.${l}.input_layernorm.weight`, hidden);
    check(`model.layers.${l}.post_attention_layernorm.weight`, hidden);
    for (const m of LLAMA_MODULES) {
      const shape = expectedShape(m, config);
      check(`${modulePath(l, m)}.weight`, shape);
      check(`${modulePath(l, m)}.bias`, [shape[0]], true);
    }
  }
}
