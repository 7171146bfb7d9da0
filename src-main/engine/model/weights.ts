// The float32 weights a forward pass runs on, held once, from one of three sources: the
// original model, a run's exact Q (quantized.safetensors dequantized, other tensors from
// the run's backbone), or that Q plus the run's LoRA adapter as a separate branch.
import { join } from 'node:path';
import { UserError } from '../errors';
import { openRunBackbone } from '../runs/backbone';
import { adapterKey, adapterSettings, checkAdapterShapes } from '../adapter/peft';
import { readModelConfig, type ModelConfig } from '../io/hf-config';
import { checkModelTensors, type CheckedIndex } from '../io/model-check';
import { openModelWeights } from '../io/model-weights';
import { openSafetensors, readTensorF32 } from '../io/safetensors-read';
import { LLAMA_MODULES, modulePath, type LinearModule } from '../io/targets';
import { QuantizedFile } from '../runs/quantized-file';
import { readJson } from '../io/json-file';
import { RUN_FILES } from '../runs/run-dir';
import { codebookLevels } from '../quant/codebook';
import type { PackedMatrix } from '../tensor/nn';

export interface LayerWeights {
  /** By decoder-graph input name: input_layernorm, q_proj, q_proj.bias, q_proj.lora_A, … */
  tensors: Map<string, Float32Array>;
  /** [rows, cols] of each tensor, for the ORT feeds (deferred ones included). */
  shapes: Map<string, number[]>;
  /**
   * Matrices kept compact and made float32 only while their layer runs: the quantized Q
   * (packed codes + absmax in memory), so a model is never held as a float copy.
   */
  deferred?: Map<string, () => Float32Array>;
  /** The deferred matrices in their stored form, for a device that dequantizes them itself. */
  packed?: Map<string, PackedMatrix>;
}

/** One layer's tensors, deferred ones materialized (for the length of one layer's run). */
export function layerTensors(layer: LayerWeights): Map<string, Float32Array> {
  if (!layer.deferred || layer.deferred.size === 0) return layer.tensors;
  const all = new Map(layer.tensors);
  for (const [name, make] of layer.deferred) all.set(name, make());
  return all;
}

export interface WeightSet {
  config: ModelConfig;
  embed: Float32Array;
  layers: LayerWeights[];
  norm: Float32Array;
  lmHead: Float32Array;
  lora: { modules: LinearModule[]; scaling: number } | null;
}

type TensorSource = (name: string) => Promise<Float32Array>;

function checkFinite(name: string, data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new UserError(`${name} has a non-finite value (${data[i]}) at index ${i}`);
  }
  return data;
}

/** Checks every tensor against the config (headers only), then reads them (reads go through TensorSource). */
async function assemble(config: ModelConfig, index: CheckedIndex, read: TensorSource): Promise<WeightSet> {
  checkModelTensors(index, config);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const tensors = new Map<string, Float32Array>();
    const shapes = new Map<string, number[]>();
    const add = async (key: string, name: string) => {
      tensors.set(key, checkFinite(name, await read(name)));
      shapes.set(key, index.info(name).shape);
    };
    await add('input_layernorm', `model.layers.${l}.input_layernorm.weight`);
    await add('post_attention_layernorm', `model.layers.${l}.post_attention_layernorm.weight`);
    for (const m of LLAMA_MODULES) {
      await add(m, `${modulePath(l, m)}.weight`);
      if (index.has(`${modulePath(l, m)}.bias`)) await add(`${m}.bias`, `${modulePath(l, m)}.bias`);
    }
    layers.push({ tensors, shapes });
  }
  const embed = checkFinite('model.embed_tokens.weight', await read('model.embed_tokens.weight'));
  const lmHead = index.has('lm_head.weight') && !config.tieWordEmbeddings ? checkFinite('lm_head.weight', await read('lm_head.weight')) : embed;
  return { config, embed, layers, norm: checkFinite('model.norm.weight', await read('model.norm.weight')), lmHead, lora: null };
}

export async function loadModelWeights(modelDir: string): Promise<WeightSet> {
  const config = await readModelConfig(modelDir);
  const weights = await openModelWeights(modelDir);
  return assemble(config, weights, (name) => weights.readF32(name));
}

/**
 * Q exactly as the run computed it, kept as packed codes + absmax and dequantized layer by
 * layer while the model runs; every other tensor from the run's backbone.
 */
export async function loadQuantizedWeights(runDir: string): Promise<WeightSet> {
  const backboneDir = join(runDir, RUN_FILES.backbone);
  const config = await readModelConfig(backboneDir);
  const backbone = await openRunBackbone(backboneDir);
  const quantized = await QuantizedFile.open(join(runDir, RUN_FILES.quantized));
  const targets = new Set(quantized.names());
  const moduleOf = (name: string) => name.replace(/\.weight$/, '');
  // Targets come from quantized.safetensors (shape from its metadata); everything else from the backbone.
  const index: CheckedIndex = {
    dir: runDir,
    names: () => [...new Set([...backbone.names(), ...[...targets].map((m) => `${m}.weight`)])],
    has: (name) => targets.has(moduleOf(name)) || backbone.has(name),
    info: (name) => (targets.has(moduleOf(name)) ? { dtype: 'F32', shape: [...quantized.matrices[moduleOf(name)].shape] } : backbone.info(name)),
  };
  const set = await assemble(config, index, (name) => (targets.has(moduleOf(name)) ? Promise.resolve(new Float32Array(0)) : backbone.readF32(name)));
  for (let l = 0; l < config.numLayers; l++) {
    const layer = set.layers[l];
    layer.deferred = new Map();
    layer.packed = new Map();
    for (const m of LLAMA_MODULES) {
      const module = modulePath(l, m);
      if (!targets.has(module)) continue;
      const compact = await quantized.load(module);
      layer.tensors.delete(m);
      layer.deferred.set(m, () => quantized.dequantizeLoaded(compact));
      const { info } = compact;
      layer.packed.set(m, { packed: compact.packed, absmax: compact.absmax, levels: codebookLevels(info.quant, info.bits), bits: info.bits, blockSize: info.block_size });
    }
  }
  return set;
}

/** Adds a PEFT adapter's A and B to a weight set (a separate branch; Q is untouched). */
export async function attachAdapter(set: WeightSet, adapterDir: string): Promise<WeightSet> {
  const configPath = join(adapterDir, 'adapter_config.json');
  const settings = adapterSettings(await readJson(configPath), configPath);
  const file = await openSafetensors(join(adapterDir, 'adapter_model.safetensors'));
  const modules = new Set<LinearModule>();
  const layers: LayerWeights[] = set.layers.map((layer) => ({ tensors: new Map(layer.tensors), shapes: new Map(layer.shapes), deferred: layer.deferred, packed: layer.packed }));
  for (let l = 0; l < set.config.numLayers; l++) {
    for (const m of LLAMA_MODULES) {
      const a = adapterKey(modulePath(l, m), 'lora_A');
      if (!file.tensors.has(a)) continue;
      modules.add(m);
      const b = adapterKey(modulePath(l, m), 'lora_B');
      if (!file.tensors.has(b)) throw new UserError(`${file.path}: ${a} has no matching ${b}`);
      const [out, inp] = layers[l].shapes.get(m) ?? [];
      checkAdapterShapes(file.path, modulePath(l, m), file.tensors.get(a)!.shape, file.tensors.get(b)!.shape, out, inp, settings.r);
      for (const [key, name] of [[`${m}.lora_A`, a], [`${m}.lora_B`, b]] as const) {
        layers[l].tensors.set(key, checkFinite(name, await readTensorF32(file, name)));
        layers[l].shapes.set(key, file.tensors.get(name)!.shape);
      }
    }
  }
  // One graph serves all layers, so every layer needs the same LoRA modules.
  for (let l = 0; l < set.config.numLayers; l++) {
    for (const m of modules) {
      if (!layers[l].tensors.has(`${m}.lora_A`)) throw new UserError(`${adapterDir}: layer ${l} has no ${m} adapter while other layers do`);
    }
  }
  return { ...set, layers, lora: { modules: LLAMA_MODULES.filter((m) => modules.has(m)), scaling: settings.scaling } };
}
