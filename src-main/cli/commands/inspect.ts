import { resolve } from 'node:path';
import { readModelConfig } from '../../engine/io/hf-config';
import { openModelWeights } from '../../engine/io/model-weights';
import { discoverTargets } from '../../engine/io/targets';
import type { Output } from '../output';
import { formatTable } from '../table';

export async function inspectCommand(modelDir: string, out: Output): Promise<void> {
  const dir = resolve(modelDir);
  const config = await readModelConfig(dir);
  const weights = await openModelWeights(dir);
  const targets = discoverTargets(weights, config, 'all-linear');
  let params = 0;
  for (const name of weights.names()) params += weights.info(name).shape.reduce((a, b) => a * b, 1);
  const targetParams = targets.reduce((s, t) => s + t.shape[0] * t.shape[1], 0);
  const summary = {
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
    parameters: params,
    weight_bytes: weights.totalBytes(),
    weight_files: weights.files.length,
    target_parameters: targetParams,
    targets: targets.map((t) => ({ name: t.name, module: t.module, layer: t.layer, shape: t.shape, dtype: weights.info(t.weight).dtype })),
  };
  out.result(summary, () => {
    const head =
      `${dir}\n` +
      `  ${config.architecture}: ${config.numLayers} layers, hidden ${config.hiddenSize}, intermediate ${config.intermediateSize}, ` +
      `${config.numHeads} heads (${config.numKvHeads} KV) of ${config.headDim}, vocab ${config.vocabSize}\n` +
      `  ${params.toLocaleString('en-US')} parameters (${config.torchDtype}, ${(weights.totalBytes() / 2 ** 20).toFixed(1)} MiB in ${weights.files.length} file(s)); ` +
      `${targets.length} target matrices hold ${targetParams.toLocaleString('en-US')}\n\n`;
    return head + formatTable(['target', 'shape [out, in]', 'params'], targets.map((t) => [t.name, `${t.shape[0]} × ${t.shape[1]}`, t.shape[0] * t.shape[1]]));
  });
}
