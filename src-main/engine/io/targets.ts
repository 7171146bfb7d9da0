// Which weight matrices get quantized with a LoRA adapter: the decoder layers' linear
// projections of the Llama family, selected by short module name and checked against the
// config so that a wrong config or a foreign checkpoint fails here, not mid-run.
import { UserError } from '../errors';
import { isLinearModule, LLAMA_MODULES, modulePath, type LinearModule } from '../rules/modules';
import { isFloatDtype, type Dtype } from './dtypes';
import type { ModelConfig } from './hf-config';

export { isLinearModule, LLAMA_MODULES, modulePath, parseTargets, type LinearModule } from '../rules/modules';

export type TargetSpec = 'all-linear' | string[];

export interface Target {
  /** Module path, e.g. model.layers.0.self_attn.q_proj (what PEFT keys are built from). */
  name: string;
  /** The weight tensor: `${name}.weight`. */
  weight: string;
  layer: number;
  module: LinearModule;
  /** [out, in] */
  shape: [number, number];
}

/** What discovery needs from a weight store (ModelWeights satisfies it). */
export interface WeightIndex {
  /** The model folder, to name it in errors. */
  readonly dir?: string;
  names(): string[];
  info(name: string): { dtype: Dtype; shape: number[] };
}

/** The [out, in] shape the config implies for a module's weight. */
export function expectedShape(module: LinearModule, c: ModelConfig): [number, number] {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  switch (module) {
    case 'q_proj':
      return [q, c.hiddenSize];
    case 'k_proj':
    case 'v_proj':
      return [kv, c.hiddenSize];
    case 'o_proj':
      return [c.hiddenSize, q];
    case 'gate_proj':
    case 'up_proj':
      return [c.intermediateSize, c.hiddenSize];
    case 'down_proj':
      return [c.hiddenSize, c.intermediateSize];
  }
}

const LAYER_WEIGHT = /^model\.layers\.(\d+)\.(self_attn|mlp)\.([A-Za-z0-9_]+)\.weight$/;

export function discoverTargets(weights: WeightIndex, config: ModelConfig, spec: TargetSpec): Target[] {
  const at = weights.dir ? `${weights.dir}: ` : '';
  // Which known modules the checkpoint has, and a check that its layer count matches.
  const present = new Set<LinearModule>();
  for (const name of weights.names()) {
    const m = LAYER_WEIGHT.exec(name);
    if (!m) continue;
    const layer = Number(m[1]);
    if (layer >= config.numLayers) {
      throw new UserError(
        `${at}the weights have tensor "${name}" but config.json says num_hidden_layers is ${config.numLayers}`,
      );
    }
    const module = m[3];
    if (isLinearModule(module) && modulePath(layer, module) === `model.layers.${layer}.${m[2]}.${module}`) present.add(module);
  }
  const available = LLAMA_MODULES.filter((m) => present.has(m));
  if (available.length === 0) {
    throw new UserError(
      `${at}no Llama-style linear weights (model.layers.N.self_attn.q_proj.weight, ...) found`,
    );
  }

  let selected: LinearModule[];
  if (spec === 'all-linear') {
    selected = [...LLAMA_MODULES];
  } else {
    if (spec.length === 0) throw new UserError('no target modules given');
    const unknown = spec.filter((s) => !isLinearModule(s) || !present.has(s));
    if (unknown.length > 0) {
      throw new UserError(
        `${at}unknown target module${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; ` +
          `available: ${available.join(', ')}`,
      );
    }
    selected = LLAMA_MODULES.filter((m) => spec.includes(m));
  }

  const known = new Set(weights.names());
  const targets: Target[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const module of selected) {
      const name = modulePath(layer, module);
      const weight = `${name}.weight`;
      if (!known.has(weight)) throw new UserError(`${at}the model has no tensor "${weight}"`);
      const { dtype, shape } = weights.info(weight);
      if (!isFloatDtype(dtype)) {
        throw new UserError(
          `${at}tensor "${weight}" has dtype ${dtype}; ` +
            'expected a floating-point weight (is the model already quantized?)',
        );
      }
      const want = expectedShape(module, config);
      if (shape.length !== 2 || shape[0] !== want[0] || shape[1] !== want[1]) {
        throw new UserError(
          `${at}tensor "${weight}" has shape [${shape.join(', ')}] but config.json implies [${want.join(', ')}]`,
        );
      }
      targets.push({ name, weight, layer, module, shape: [shape[0], shape[1]] });
    }
  }
  return targets;
}

/**
 * The embedding (and a separate lm_head) must have config.json's vocab_size rows and
 * hidden_size columns: a mismatch would index past the table or score the wrong tokens.
 */
export function checkEmbeddings(weights: WeightIndex, config: ModelConfig): void {
  const at = weights.dir ? `${weights.dir}: ` : '';
  for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
    if (!weights.names().includes(name)) continue;
    const { shape } = weights.info(name);
    if (shape.length !== 2 || shape[0] !== config.vocabSize || shape[1] !== config.hiddenSize) {
      throw new UserError(`${at}tensor "${name}" has shape [${shape.join(', ')}] but config.json says vocab_size ${config.vocabSize} and hidden_size ${config.hiddenSize}`);
    }
  }
}

