// For grad_compare.py: our loss and LoRA gradients (loraGradients, float32, CPU) for a model, a
// PEFT adapter and one batch, written under the adapter's own key names. Bundled to
// dist/xcheck-grads.cjs so that it runs on the GPU machine with the packed Node.
//   node dist/xcheck-grads.cjs MODEL_DIR ADAPTER_DIR BATCH_JSON OUT.safetensors
// BATCH_JSON: {"ids": [T], "targets": [T], "mask": [T]} (targets[t] follows ids[0..t]; mask ≥ 0).
// OUT: base_model.model.<module>.lora_A.weight = ∂L/∂A [r, in], ….lora_B.weight = ∂L/∂B [out, r],
// `loss` [1] and `nll` [T], all F32; L = Σ mask·nll / Σ mask.
import { readFile } from 'node:fs/promises';
import { adapterKey } from '../../src-main/engine/adapter/peft';
import { loraGradients } from '../../src-main/engine/grad/lora-gradients';
import { bytesOf, writeSafetensors, type TensorEntry } from '../../src-main/engine/io/safetensors-write';
import { modulePath } from '../../src-main/engine/io/targets';
import { attachAdapter, loadModelWeights } from '../../src-main/engine/model/weights';

interface Batch {
  ids: number[];
  targets: number[];
  mask: number[];
}

function numbers(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new Error(`batch.json: "${what}" must be an array of finite numbers`);
  }
  return value as number[];
}

async function readBatch(path: string): Promise<Batch> {
  const raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  const batch = { ids: numbers(raw.ids, 'ids'), targets: numbers(raw.targets, 'targets'), mask: numbers(raw.mask, 'mask') };
  if (batch.targets.length !== batch.ids.length || batch.mask.length !== batch.ids.length) {
    throw new Error(`batch.json: ids, targets and mask have lengths ${batch.ids.length}, ${batch.targets.length}, ${batch.mask.length}`);
  }
  return batch;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.length !== 4) {
    console.error('usage: xcheck-grads MODEL_DIR ADAPTER_DIR BATCH_JSON OUT.safetensors');
    process.exit(2);
  }
  const [modelDir, adapterDir, batchPath, outPath] = args;
  const batch = await readBatch(batchPath);
  const weights = await attachAdapter(await loadModelWeights(modelDir), adapterDir);
  if (!weights.lora) throw new Error(`${adapterDir}: no LoRA adapter attached`);
  const t0 = performance.now();
  const result = await loraGradients(
    weights,
    Int32Array.from(batch.ids),
    Int32Array.from(batch.targets),
    Float32Array.from(batch.mask),
  );
  const ms = performance.now() - t0;

  const tensors: TensorEntry[] = [];
  result.grads.forEach((layer, l) => {
    const shapes = weights.layers[l].shapes;
    for (const [m, g] of layer) {
      const path = modulePath(l, m);
      const shapeA = shapes.get(`${m}.lora_A`)!;
      const shapeB = shapes.get(`${m}.lora_B`)!;
      if (g.dA.length !== shapeA[0] * shapeA[1] || g.dB.length !== shapeB[0] * shapeB[1]) {
        throw new Error(`${path}: gradient sizes ${g.dA.length}, ${g.dB.length} do not match A [${shapeA}] and B [${shapeB}]`);
      }
      tensors.push({ name: adapterKey(path, 'lora_A'), dtype: 'F32', shape: shapeA, data: bytesOf(g.dA) });
      tensors.push({ name: adapterKey(path, 'lora_B'), dtype: 'F32', shape: shapeB, data: bytesOf(g.dB) });
    }
  });
  tensors.push({ name: 'loss', dtype: 'F32', shape: [1], data: bytesOf(Float32Array.of(result.loss)) });
  tensors.push({ name: 'nll', dtype: 'F32', shape: [result.nll.length], data: bytesOf(result.nll) });
  await writeSafetensors(outPath, tensors);
  console.log(
    `xcheck-grads: ${modelDir} + ${adapterDir}: T=${batch.ids.length}, loss ${result.loss.toPrecision(9)}, ` +
      `${tensors.length - 2} gradient tensors (${weights.lora.modules.join(',')}; scaling ${weights.lora.scaling}) ` +
      `in ${ms.toFixed(0)} ms → ${outPath}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
