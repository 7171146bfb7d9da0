// Export a finished run: `peft` (the adapter at the folder's top, loadable with
// PeftModel.from_pretrained, plus the backbone it was computed for in backbone/), `gguf`
// (llama.cpp's model.gguf with the run's Q and adapter.gguf), or `merged` (a plain model
// folder with W' = Q + s·B·A). The folder is assembled under a
// temporary name and renamed into place, so it appears complete or not at all.
import { rmSync } from 'node:fs';
import { cp, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CancelledError, UserError } from '../errors';
import { writeFullBackbone } from '../runs/backbone';
import { writeGgufExport } from '../export/gguf';
import { adapterKey, adapterSettings, checkAdapterShapes } from '../adapter/peft';
import { writeJsonAtomic } from '../io/atomic-write';
import { checkOutput, markOwned } from '../runs/ownership';
import { finishStaging, makeStagingDir, removeDeadStaging } from '../runs/staging';
import { onAbandon } from './abandon';
import { openSafetensors, readTensorF32 } from '../io/safetensors-read';
import { QuantizedFile } from '../runs/quantized-file';
import { readJsonFile, readRunRecord, RUN_FILES } from '../runs/run-dir';
import { TensorScope } from '../tensor/device';
import { openDevice, type DeviceChoice } from '../tensor/devices';
import { matrix } from '../tensor/matrix';
import type { EventSink } from './events';

export const EXPORT_FORMATS = ['peft', 'gguf', 'merged'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  run: string;
  format: string;
  out: string;
  force?: boolean;
  signal?: AbortSignal;
  /** Where the merge runs (merged format); auto by default. */
  device?: DeviceChoice;
  onEvent?: EventSink;
}

export interface ExportResult {
  out: string;
  format: ExportFormat;
  files: string[];
  /** What the user should know about the result (GGUF: how Q was stored, what llama.cpp does differently). */
  notes: string[];
}

export async function runExport(o: ExportOptions): Promise<ExportResult> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
    throw new UserError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, got '${o.format}'`);
  }
  const format = o.format as ExportFormat;
  const runDir = resolve(o.run);
  const record = await readRunRecord(runDir);
  if (record.status !== 'done') throw new UserError(`${runDir}: the run is ${record.status}, only a finished run can be exported`);
  // Never the run itself, its source model, or anything around or inside them.
  const protect = [{ path: runDir, what: 'the run' }];
  if (typeof record.model.path === 'string' && record.model.path) protect.push({ path: record.model.path, what: "the run's source model" });
  const { path: out } = await checkOutput(o.out, 'export', o.force ?? false, { protect });
  const notes: string[] = [];
  // Staging folders of earlier exports here that were killed go first (ours, owner dead).
  await removeDeadStaging(dirname(out));
  const staging = await makeStagingDir(out);
  // A process that must exit at once (a second Ctrl-C) still takes its staging folder along.
  const unregister = onAbandon(() => rmSync(staging, { recursive: true, force: true }));
  // Cancel is honoured between tensors (each one's progress event).
  const onEvent: EventSink = (e) => {
    if (o.signal?.aborted) throw new CancelledError();
    o.onEvent?.(e);
  };
  try {
    if (format === 'peft') await exportPeft(runDir, staging, out, onEvent);
    else if (format === 'gguf') notes.push(...(await exportGguf(runDir, staging, onEvent)));
    else await exportMerged(runDir, staging, o.device ?? 'auto', onEvent);
    await finishStaging(staging);
    await markOwned(staging, 'export');
    await rm(out, { recursive: true, force: true });
    await rename(staging, out);
  } catch (e) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  } finally {
    unregister();
  }
  o.onEvent?.({ type: 'phase', phase: 'export', detail: out });
  return { out, format, files: await listFiles(out), notes };
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const files: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    if ((await stat(p)).isDirectory()) files.push(...(await listFiles(p, `${prefix}${name}/`)));
    else files.push(`${prefix}${name}`);
  }
  return files;
}

async function exportPeft(runDir: string, staging: string, finalOut: string, onEvent?: EventSink): Promise<void> {
  const adapterDir = join(runDir, RUN_FILES.adapter);
  await cp(join(adapterDir, 'adapter_model.safetensors'), join(staging, 'adapter_model.safetensors'));
  // The run keeps Q packed; the export carries the full backbone PEFT loads the adapter onto.
  const quantized = await QuantizedFile.open(join(runDir, RUN_FILES.quantized));
  await writeFullBackbone(join(staging, 'backbone'), join(runDir, RUN_FILES.backbone), quantized, {
    onTensor: (done, total) => onEvent?.({ type: 'phase', phase: 'export', detail: `${done}/${total} tensors` }),
  });
  const config = await readJsonFile<Record<string, unknown>>(join(adapterDir, 'adapter_config.json'));
  config.base_model_name_or_path = join(finalOut, 'backbone');
  await writeJsonAtomic(join(staging, 'adapter_config.json'), config);
}

async function exportGguf(runDir: string, staging: string, onEvent?: EventSink): Promise<string[]> {
  const result = await writeGgufExport(runDir, staging, { onTensor: (done, total) => onEvent?.({ type: 'phase', phase: 'export', detail: `${done}/${total} tensors` }) });
  return result.notes;
}

async function exportMerged(runDir: string, staging: string, choice: DeviceChoice, onEvent?: EventSink): Promise<void> {
  const quantized = await QuantizedFile.open(join(runDir, RUN_FILES.quantized));
  const adapterDir = join(runDir, RUN_FILES.adapter);
  const configPath = join(adapterDir, 'adapter_config.json');
  const { r, scaling } = adapterSettings(await readJsonFile<unknown>(configPath), configPath);
  const adapter = await openSafetensors(join(adapterDir, 'adapter_model.safetensors'));
  const { device } = await openDevice(choice);
  try {
    await writeFullBackbone(staging, join(runDir, RUN_FILES.backbone), quantized, {
      transform: async (module, q) => {
        const [out, inp] = quantized.matrices[module].shape;
        const infoA = adapter.tensors.get(adapterKey(module, 'lora_A'));
        const infoB = adapter.tensors.get(adapterKey(module, 'lora_B'));
        if (!infoA || !infoB) throw new UserError(`${adapter.path}: no adapter for ${module}`);
        checkAdapterShapes(adapter.path, module, infoA.shape, infoB.shape, out, inp, r);
        const a = await readTensorF32(adapter, adapterKey(module, 'lora_A'));
        const b = await readTensorF32(adapter, adapterKey(module, 'lora_B'));
        const scope = new TensorScope();
        try {
          // W' = Q + s·B·A  computed as Q − (−s·B)·A by the residual kernel.
          const merged = scope.track(
            await device.lowRankResidual(
              scope.track(await device.upload(matrix(out, inp, q))),
              scope.track(await device.upload(matrix(out, r, b.map((v) => -v * scaling)))),
              scope.track(await device.upload(matrix(r, inp, a))),
            ),
          );
          return (await device.download(merged)).data;
        } finally {
          scope.dispose();
        }
      },
      onTensor: (done, total) => onEvent?.({ type: 'phase', phase: 'export', detail: `${done}/${total} tensors` }),
    });
  } finally {
    await device.dispose();
  }
}
