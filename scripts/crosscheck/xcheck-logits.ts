// For hf_compare.py: our float32 logits for given token ids, and our tokenization of a text,
// written where the Python side reads them. Bundled to dist/xcheck-logits.cjs so that it runs
// on the GPU machine with the packed Node (no TypeScript there).
//   node dist/xcheck-logits.cjs MODEL_DIR IDS_JSON OUT_LOGITS.safetensors [TEXT_FILE OUT_IDS_JSON]
import { readFile, writeFile } from 'node:fs/promises';
import { bytesOf, writeSafetensors } from '../../src-main/engine/io/safetensors-write';
import { Transformer } from '../../src-main/engine/model/transformer';
import { loadModelWeights } from '../../src-main/engine/model/weights';
import { loadTokenizer } from '../../src-main/engine/text/tokenizer';

async function main(): Promise<void> {
  const [modelDir, idsPath, outPath, textPath, outIdsPath] = process.argv.slice(2);
  const ids = Int32Array.from(JSON.parse(await readFile(idsPath, 'utf8')) as number[]);
  const model = new Transformer(await loadModelWeights(modelDir));
  const logits = await model.logits(ids);
  await model.dispose();
  await writeSafetensors(outPath, [{ name: 'logits', dtype: 'F32', shape: [ids.length, logits.length / ids.length], data: bytesOf(logits) }]);
  if (textPath && outIdsPath) {
    const tokenizer = await loadTokenizer(modelDir);
    const encoded = await tokenizer.encode(await readFile(textPath, 'utf8'), { addBos: false });
    await writeFile(outIdsPath, JSON.stringify(Array.from(encoded)));
  }
  console.log(`xcheck-logits: ${modelDir}: ${ids.length} positions → ${outPath}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
