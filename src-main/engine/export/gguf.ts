// A run as llama.cpp files: model.gguf, the run's base with exactly its Q, and adapter.gguf,
// its LoRA adapter, so that llama.cpp's base + adapter is the engine's Q + s·B·A.
//  - q4_0 / q8_0 matrices are written as llama.cpp's blocks from the run's own codes and
//    scales (no requantization: the bytes are the Q the adapter was fitted to);
//  - matrices of quantizers llama.cpp has no type for (NF, uniform) are written as F16 of Q;
//  - everything else keeps its stored type (norms and biases as F32, which llama.cpp wants).
import { join } from 'node:path';
import { UserError } from '../errors';
import { f32ToF16, type FloatDtype } from '../io/dtypes';
import { readModelConfig, type ModelConfig } from '../io/hf-config';
import { openSafetensors, readTensorRaw, type SafetensorsFile } from '../io/safetensors-read';
import { codebookName, quantRule } from '../quant/codebook';
import { unpackCodes } from '../tensor/packing';
import { QuantizedFile } from '../runs/quantized-file';
import { readJsonFile, RUN_FILES } from '../runs/run-dir';
import { LLAMA_FILE_TYPE, type GgmlType } from '../gguf/format';
import { encodeGgmlBlocks, ggmlTypeOf, type GgmlRule } from '../gguf/ggml-blocks';
import { architectureLayout, ggufTensorName, reorderRows, ropeRowHeads, ropeRowOrder, type ArchitectureLayout } from '../gguf/llama-arch';
import { ggufVocab } from '../gguf/vocab';
import { gguf, writeGguf, type GgufTensor, type GgufValue } from '../gguf/write';
import { moduleOf, openRunBackbone } from '../runs/backbone';
import { adapterKey, adapterSettings, checkAdapterShapes, ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../adapter/peft';

const GGUF_MODEL = 'model.gguf';
const GGUF_ADAPTER = 'adapter.gguf';

export interface GgufExportResult {
  /** What llama.cpp will run differently from the engine, or how Q was stored. */
  notes: string[];
}

const RAW_TYPES: Partial<Record<FloatDtype, GgmlType>> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

interface Plan {
  layout: ArchitectureLayout;
  config: ModelConfig;
  /** GGUF names of the base's tensors, with the HF name each comes from. */
  tensors: Array<{ hf: string; gguf: string }>;
}

/** ne (ggml dimensions, fastest first) of a Hugging Face shape. */
const neOf = (shape: readonly number[]) => [...shape].reverse();

export interface GgufExportOptions {
  onTensor?: (done: number, total: number) => void;
  /**
   * Every tensor as F32 (Q exact whatever the quantizer; 4–8× larger). llama.cpp then computes
   * in float32 throughout, as the engine does: its q4_0/q8_0 products round the activations to
   * q8_0 and its BF16/F16 products round them to BF16/F16. The tests use it to check the layout
   * with nothing else in the way.
   */
  allF32?: boolean;
}

export async function writeGgufExport(runDir: string, outDir: string, options: GgufExportOptions = {}): Promise<GgufExportResult> {
  const onTensor = options.onTensor;
  const asF32 = options.allF32 === true;
  const backboneDir = join(runDir, RUN_FILES.backbone);
  const config = await readModelConfig(backboneDir);
  const backbone = await openRunBackbone(backboneDir);
  const quantized = await QuantizedFile.open(join(runDir, RUN_FILES.quantized));
  const targets = new Set(quantized.names());
  const layout = architectureLayout(config, config.maxPositionEmbeddings);
  const vocab = await ggufVocab(backboneDir, config.vocabSize);
  const notes = [...layout.notes, ...vocab.notes];

  // Every tensor of the model, named as llama.cpp names it; one it has no place for stops the export.
  const hfNames = [...new Set([...backbone.names().filter((n) => !targets.has(moduleOf(n))), ...[...targets].map((m) => `${m}.weight`)])];
  const plan: Plan = { layout, config, tensors: [] };
  for (const hf of hfNames) {
    if (hf === 'lm_head.weight' && config.tieWordEmbeddings) continue; // llama.cpp reuses token_embd
    const name = ggufTensorName(hf);
    if (name === null) throw new UserError(`${backboneDir}: tensor "${hf}" has no place in llama.cpp's ${layout.arch} architecture`);
    plan.tensors.push({ hf, gguf: name });
  }
  plan.tensors.sort((a, b) => tensorRank(a.gguf) - tensorRank(b.gguf) || a.gguf.localeCompare(b.gguf, 'en', { numeric: true }));

  const matrixTypes: Record<string, number> = {};
  const fallback = new Set<string>();
  const tensors: GgufTensor[] = [];
  if (layout.ropeFreqs) tensors.push({ name: 'rope_freqs.weight', type: 'F32', ne: [layout.ropeFreqs.length], data: f32Bytes(layout.ropeFreqs) });
  let done = 0;
  const total = plan.tensors.length;
  const progress = () => onTensor?.(++done, total);
  for (const { hf, gguf: name } of plan.tensors) {
    const heads = ropeRowHeads(layout.arch, config, hf);
    const module = moduleOf(hf);
    if (targets.has(module)) {
      const info = quantized.matrices[module];
      const [rows, cols] = info.shape;
      const rule = quantRule(info.quant, info.bits);
      const type: GgmlType = asF32 ? 'F32' : rule === 'absmax' ? 'F16' : ggmlTypeOf(rule as GgmlRule);
      if (rule === 'absmax' && !asF32) fallback.add(codebookName(info.quant, info.bits));
      matrixTypes[type] = (matrixTypes[type] ?? 0) + 1;
      tensors.push({
        name,
        type,
        ne: [cols, rows],
        data: async () => {
          let bytes: Uint8Array;
          if (asF32) {
            bytes = f32Bytes(await quantized.dequantize(module));
          } else if (rule === 'absmax') {
            bytes = f32ToF16(await quantized.dequantize(module));
          } else {
            const m = await quantized.load(module);
            bytes = encodeGgmlBlocks(rule as GgmlRule, unpackCodes(m.packed, info.bits, rows * cols), m.absmax);
          }
          progress();
          return heads === null ? bytes : reorderRows(bytes, rows, ropeRowOrder(rows, heads));
        },
      });
      continue;
    }
    const info = backbone.info(hf);
    const rows = info.shape.length === 2 ? info.shape[0] : 1;
    // 1-D tensors (norms, biases) as F32; matrices keep their stored float type (F64 → F32).
    const keep = info.shape.length === 2 && !asF32 ? RAW_TYPES[info.dtype as FloatDtype] : undefined;
    const type: GgmlType = keep ?? 'F32';
    if (info.shape.length < 1 || info.shape.length > 2) throw new UserError(`${backboneDir}: tensor "${hf}" has ${info.shape.length} dimensions; llama.cpp's ${layout.arch} wants 1 or 2`);
    tensors.push({
      name,
      type,
      ne: neOf(info.shape),
      data: async () => {
        const bytes = keep ? await backbone.readRaw(hf) : f32Bytes(await backbone.readF32(hf));
        progress();
        // A bias of q or k is reordered like the rows of its weight: one "row" per element.
        const n = info.shape.length === 2 ? rows : info.shape[0];
        return heads === null ? bytes : reorderRows(bytes, n, ropeRowOrder(n, heads));
      },
    });
  }
  if (fallback.size > 0) {
    notes.push(`llama.cpp has no type for ${[...fallback].join(', ')}: those matrices are stored as F16 of Q (each weight rounded to fp16, relative change at most 2^-11), while the adapter was fitted to Q itself`);
  }

  const fileType = majorityType(matrixTypes);
  const name = typeof config.raw._name_or_path === 'string' && config.raw._name_or_path ? config.raw._name_or_path : 'model';
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', gguf.str(layout.arch)],
    ['general.type', gguf.str('model')],
    ['general.name', gguf.str(name)],
    ['general.file_type', gguf.u32(LLAMA_FILE_TYPE[fileType] ?? 1)],
  ]);
  if (matrixTypes.Q4_0 || matrixTypes.Q8_0) metadata.set('general.quantization_version', gguf.u32(2));
  for (const [k, v] of layout.metadata) metadata.set(k, v);
  for (const [k, v] of vocab.metadata) metadata.set(k, v);
  await writeGguf(join(outDir, GGUF_MODEL), metadata, tensors);

  await writeAdapter(runDir, outDir, plan, quantized, name);
  return { notes };
}

/** token_embd and rope_freqs first, then the blocks in order, then the output: the converter's order. */
function tensorRank(name: string): number {
  if (name === 'token_embd.weight') return 0;
  if (name.startsWith('blk.')) return 1;
  return 2;
}

function majorityType(counts: Record<string, number>): GgmlType {
  let best: GgmlType = 'F16';
  let n = -1;
  for (const [t, c] of Object.entries(counts)) {
    if (c > n) {
      best = t as GgmlType;
      n = c;
    }
  }
  return best;
}

/**
 * adapter.gguf: `<tensor>.lora_a` (ne [in, r]) and `<tensor>.lora_b` (ne [r, out]) for every
 * adapted matrix, F32 as trained. llama.cpp scales B·A by alpha / r (r from lora_a's shape), so
 * alpha is written as s·r: α itself for LoRA, α·√r for rsLoRA.
 */
async function writeAdapter(runDir: string, outDir: string, plan: Plan, quantized: QuantizedFile, name: string): Promise<void> {
  const adapterDir = join(runDir, RUN_FILES.adapter);
  const configPath = join(adapterDir, ADAPTER_CONFIG);
  const settings = adapterSettings(await readJsonFile<unknown>(configPath), configPath);
  const file: SafetensorsFile = await openSafetensors(join(adapterDir, ADAPTER_WEIGHTS));
  const tensors: GgufTensor[] = [];
  for (const { hf, gguf: base } of plan.tensors) {
    const module = moduleOf(hf);
    const keyA = adapterKey(module, 'lora_A');
    const keyB = adapterKey(module, 'lora_B');
    const infoA = file.tensors.get(keyA);
    const infoB = file.tensors.get(keyB);
    if (!infoA && !infoB) continue;
    if (!infoA || !infoB) throw new UserError(`${file.path}: ${module} has only one of lora_A and lora_B`);
    const shape = quantized.matrices[module]?.shape;
    if (!shape) throw new UserError(`${file.path}: ${module} is adapted but not a quantized matrix of the run`);
    const [out, inp] = shape;
    checkAdapterShapes(file.path, module, infoA.shape, infoB.shape, out, inp, settings.r);
    if (infoA.dtype !== 'F32' || infoB.dtype !== 'F32') throw new UserError(`${file.path}: ${module}'s adapter is ${infoA.dtype}/${infoB.dtype}; the run's adapter is always F32`);
    const heads = ropeRowHeads(plan.layout.arch, plan.config, hf);
    tensors.push({ name: `${base}.lora_a`, type: 'F32', ne: [inp, settings.r], data: () => readTensorRaw(file, keyA) });
    tensors.push({
      name: `${base}.lora_b`,
      type: 'F32',
      ne: [settings.r, out],
      data: async () => {
        const b = await readTensorRaw(file, keyB);
        return heads === null ? b : reorderRows(b, out, ropeRowOrder(out, heads));
      },
    });
  }
  if (tensors.length === 0) throw new UserError(`${file.path}: the adapter has no LoRA matrices`);
  const alpha = settings.scaling * settings.r;
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', gguf.str(plan.layout.arch)],
    ['general.type', gguf.str('adapter')],
    ['general.name', gguf.str(`${name} LoftQ adapter`)],
    ['adapter.type', gguf.str('lora')],
    ['adapter.lora.alpha', gguf.f32(alpha)],
  ]);
  await writeGguf(join(outDir, GGUF_ADAPTER), metadata, tensors);
}
