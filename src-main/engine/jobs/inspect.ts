// What `loftq inspect` and the app's Models view show about a model folder.
import { resolve } from 'node:path';
import { readModelConfig } from '../io/hf-config';
import { checkModelTensors } from '../io/model-check';
import { openModelWeights } from '../io/model-weights';
import { discoverTargets } from '../io/targets';

export async function inspectModel(modelDir: string) {
  const dir = resolve(modelDir);
  const config = await readModelConfig(dir);
  const weights = await openModelWeights(dir);
  const targets = discoverTargets(weights, config, 'all-linear');
  checkModelTensors(weights, config);
  return {
    path: dir,
    architecture: config.architecture,
    layers: config.numLayers,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    heads: config.numHeads,
    kv_heads: config.numKvHeads,
    head_dim: config.headDim,
    vocab_size: config.vocabSize,
    tie_word_embeddings: config.tieWordEmbeddings,
    torch_dtype: config.torchDtype,
    parameters: weights.totalElements(),
    weight_bytes: weights.totalBytes(),
    weight_files: weights.files.length,
    target_parameters: targets.reduce((s, t) => s + t.shape[0] * t.shape[1], 0),
    targets: targets.map((t) => ({ name: t.name, module: t.module, layer: t.layer, shape: t.shape, dtype: weights.info(t.weight).dtype as string })),
  };
}

export type ModelInspection = Awaited<ReturnType<typeof inspectModel>>;
