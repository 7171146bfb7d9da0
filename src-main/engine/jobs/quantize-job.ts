// The quantize job: a local Hugging Face model → a run directory with the exact Q
// (quantized.safetensors), the LoRA init (adapter-init/ and adapter/, PEFT format), the
// tensors that are not quantized (backbone/), and per-matrix metrics. Matrices stream through
// the job's device one at a time: the next one is read while the current one is computed and
// the previous one's outputs are written. The run is marked failed or cancelled on any
// interruption, never left half-written.
import { rmSync } from 'node:fs';
import { copyFile, mkdir, rm, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CancelledError, UserError } from '../errors';
import { writeRunBackbone } from '../runs/backbone';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, adapterConfig, PeftAdapterWriter, type AdapterConfigInput } from '../adapter/peft';
import { writeJsonAtomic } from '../io/atomic-write';
import { isFloatDtype, type FloatDtype } from '../io/dtypes';
import { readModelConfig, type ModelConfig } from '../io/hf-config';
import { fsError, openRegularFile } from '../io/fs-util';
import { openModelWeights, type ModelWeights } from '../io/model-weights';
import { checkModelTensors } from '../io/model-check';
import { discoverTargets, parseTargets, type Target } from '../io/targets';
import { initializerFor, loraScaling, type MatrixInitResult } from '../init';
import { codebookLevels, GGML_BLOCK_SIZE } from '../quant/codebook';
import { packedByteLength } from '../tensor/packing';
import {
  prepareRunDir,
  RUN_FILES,
  RUN_FORMAT,
  writeLayers,
  writeRunRecord,
  type LayerRecord,
  type RunRecord,
} from '../runs/run-dir';
import { currentProcess } from '../runs/interrupted';
import { matrixInfo, QuantizedFileWriter, type QuantizedMatrixInfo } from '../runs/quantized-file';
import type { ComputeDevice, DeviceMatrix } from '../tensor/device';
import { deviceRecord, openDevice } from '../tensor/devices';
import { onAbandon, removeTemporariesSync, writeJsonSync } from './abandon';
import { averageBits, scaleBitsOf } from '../rules/average-bits';
import { assignBits } from './bits-map';
import type { EventSink } from './events';
import { validateQuantizeOptions, type QuantizeOptions } from './quantize-options';

export interface JobControl {
  signal?: AbortSignal;
  onEvent?: EventSink;
}

export interface QuantizePlan {
  config: ModelConfig;
  weights: ModelWeights;
  targets: Target[];
  bits: number[];
}

/** Everything that can be checked before any output is created. */
export async function planQuantize(o: QuantizeOptions): Promise<QuantizePlan> {
  validateQuantizeOptions(o);
  const modelDir = resolve(o.model);
  const config = await readModelConfig(modelDir);
  const weights = await openModelWeights(modelDir);
  const targets = discoverTargets(weights, config, parseTargets(o.targets));
  checkModelTensors(weights, config);
  if (targets.length === 0) throw new UserError(`${modelDir}: no target matrices found`);
  for (const t of targets) {
    const limit = Math.min(t.shape[0], t.shape[1]);
    if (o.rank > limit) {
      throw new UserError(`--rank ${o.rank} is larger than min(out, in) = ${limit} of ${t.name} [${t.shape.join(', ')}]`);
    }
  }
  if (o.quant === 'ggml') {
    // llama.cpp's blocks run along each row: a row must be whole blocks.
    const ragged = targets.find((t) => t.shape[1] % GGML_BLOCK_SIZE !== 0);
    if (ragged) throw new UserError(`${ragged.name} [${ragged.shape.join(', ')}]: llama.cpp's q4_0/q8_0 need rows of a multiple of ${GGML_BLOCK_SIZE} values`);
  }
  const bits = assignBits(targets, o.bits, o.bitsMap);
  for (const b of new Set(bits)) codebookLevels(o.quant, b); // e.g. a 2-bit rule with q4_0
  return { config, weights, targets, bits };
}

function resolvedConfig(o: QuantizeOptions, modelDir: string): Record<string, unknown> {
  return {
    model: modelDir,
    method: o.method,
    bits: o.bits,
    bits_map: o.bitsMap ?? null,
    quant: o.quant,
    block: o.block,
    rank: o.rank,
    alpha: o.alpha,
    rslora: o.rslora,
    scaling: loraScaling(o.alpha, o.rank, o.rslora),
    iters: o.method === 'loftq' ? o.iters : 0,
    svd: o.svd,
    targets: o.targets,
    device: o.device,
    seed: o.seed,
  };
}

function summarize(layers: LayerRecord[], avgBits: number): Record<string, number> {
  const mean = (f: (l: LayerRecord) => number) => layers.reduce((s, l) => s + f(l), 0) / layers.length;
  return {
    matrices: layers.length,
    mean_err_q: mean((l) => l.err_q),
    mean_err_init: mean((l) => l.err_init),
    max_err_init: Math.max(...layers.map((l) => l.err_init)),
    avg_bits: avgBits,
    // LoftQ's alternation is not monotone: how often an error rose and a best step was kept.
    matrices_error_rose: layers.filter((l) => l.error_rose).length,
    matrices_best_not_last: layers.filter((l) => l.best_step !== undefined && l.best_step < l.step_errors.length).length,
    matrices_stopped_early: layers.filter((l) => l.stopped_early).length,
  };
}

/** The open shard files of a model, by path (one descriptor each for the job). */
class ShardFiles {
  private readonly open = new Map<string, Promise<FileHandle>>();

  fd(path: string): Promise<number> {
    let fh = this.open.get(path);
    if (!fh) {
      fh = openRegularFile(path);
      this.open.set(path, fh);
    }
    return fh.then((h) => h.fd);
  }

  async close(): Promise<void> {
    for (const fh of this.open.values()) await fh.then((h) => h.close()).catch(() => undefined);
    this.open.clear();
  }
}

/** Reads one target matrix onto the device and rejects non-finite weights, naming the first. */
async function readTarget(device: ComputeDevice, weights: ModelWeights, files: ShardFiles, t: Target): Promise<DeviceMatrix> {
  const info = weights.info(t.weight);
  if (!isFloatDtype(info.dtype)) throw new UserError(`${t.weight} has dtype ${info.dtype}, not a floating-point type`);
  const w = await device.readFile(await files.fd(info.file), info.begin, info.dtype, t.shape[0], t.shape[1]);
  const bad = await device.findNonFinite(w);
  if (bad >= 0) {
    const host = await device.download(w).finally(() => w.dispose());
    throw new UserError(`${t.weight} has a non-finite value (${host.data[bad]}) at [${Math.floor(bad / t.shape[1])}, ${bad % t.shape[1]}]`);
  }
  return w;
}

/** One matrix read ahead; a read nobody takes (after an error or cancel) is freed when it lands. */
class ReadAhead {
  private pending: Promise<DeviceMatrix> | null = null;
  start(read: () => Promise<DeviceMatrix>): void {
    const p = read();
    p.catch(() => undefined);
    this.pending = p;
  }
  take(): Promise<DeviceMatrix> {
    const p = this.pending;
    this.pending = null;
    if (!p) throw new Error('no read in flight');
    return p;
  }
  drop(): void {
    this.pending?.then((m) => m.dispose(), () => undefined);
    this.pending = null;
  }
}

function freeResult(r: MatrixInitResult): void {
  r.quantized.dispose();
  r.loraA.dispose();
  r.loraB.dispose();
}

function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

export async function runQuantize(o: QuantizeOptions, control: JobControl = {}): Promise<RunRecord> {
  const { signal, onEvent } = control;
  const plan = await planQuantize(o);
  const { config, weights, targets, bits } = plan;
  const modelDir = resolve(o.model);
  // The device is chosen before anything is written: `--device cuda` that cannot work fails clean.
  const opened = await openDevice(o.device);
  const { device } = opened;
  let runDir: string;
  try {
    runDir = await prepareRunDir(o.out, o.force, modelDir);
  } catch (e) {
    await device.dispose();
    throw e;
  }
  const started = performance.now();
  const record: RunRecord = {
    format: RUN_FORMAT,
    kind: 'quantize',
    status: 'running',
    config: resolvedConfig(o, modelDir),
    model: {
      path: modelDir,
      architecture: config.architecture,
      name: (config.raw._name_or_path as string | undefined) ?? null,
      layers: config.numLayers,
      hidden_size: config.hiddenSize,
      torch_dtype: config.torchDtype,
      weight_bytes: weights.totalBytes(),
    },
    device: deviceRecord(opened),
    process: currentProcess(),
    created: new Date().toISOString(),
    timings: {},
  };
  const totalParams = targets.reduce((s, t) => s + t.shape[0] * t.shape[1], 0);
  const initializer = initializerFor(o.method);
  const scaling = loraScaling(o.alpha, o.rank, o.rslora);
  const layers: LayerRecord[] = [];
  const files = new ShardFiles();
  const readAhead = new ReadAhead();
  let quantizedFile: QuantizedFileWriter | null = null;
  let adapterFile: PeftAdapterWriter | null = null;
  // The previous matrix's outputs go to disk while the next one is computed.
  let writing: Promise<void> = Promise.resolve();
  // A second Ctrl-C exits at once: this still marks the run cancelled and removes its partial files.
  const forget = onAbandon(() => {
    writeJsonSync(join(runDir, RUN_FILES.run), { ...record, status: 'cancelled', error: 'cancelled', finished: new Date().toISOString() });
    for (const partial of [RUN_FILES.quantized, RUN_FILES.adapter, RUN_FILES.adapterInit, RUN_FILES.backbone]) rmSync(join(runDir, partial), { recursive: true, force: true });
    removeTemporariesSync(runDir);
  });
  try {
    await writeRunRecord(runDir, record);
    onEvent?.({ type: 'start', job: 'quantize', run: runDir, matrices: targets.length, total_params: totalParams, device: record.device as Record<string, unknown> });
    const specs = targets.map((_, i) => ({ kind: o.quant, bits: bits[i], blockSize: o.block }));
    const infos: Record<string, QuantizedMatrixInfo> = {};
    targets.forEach((t, i) => {
      infos[t.name] = matrixInfo(t.shape, specs[i], weights.info(t.weight).dtype as FloatDtype);
    });
    quantizedFile = await QuantizedFileWriter.create(join(runDir, RUN_FILES.quantized), infos);
    adapterFile = await PeftAdapterWriter.create(
      join(runDir, RUN_FILES.adapterInit),
      targets.map((t) => ({ name: t.name, rank: o.rank, shape: t.shape })),
    );

    let doneParams = 0;
    if (targets.length > 0) readAhead.start(() => readTarget(device, weights, files, targets[0]));
    for (let i = 0; i < targets.length; i++) {
      if (signal?.aborted) throw new CancelledError();
      const t = targets[i];
      const t0 = performance.now();
      onEvent?.({ type: 'matrix', index: i, total: targets.length, name: t.name, shape: t.shape, bits: bits[i] });
      const w = await readAhead.take();
      let result: MatrixInitResult;
      try {
        if (i + 1 < targets.length) readAhead.start(() => readTarget(device, weights, files, targets[i + 1]));
        result = await initializer.init(
          w,
          { quant: specs[i], rank: o.rank, scaling, iters: o.iters, svd: o.svd, seed: o.seed + i * 7919 },
          {
            device,
            signal,
            onStep: (step, err) =>
              onEvent?.({ type: 'step', index: i, total: targets.length, name: t.name, step, iters: o.method === 'loftq' ? o.iters : 1, err }),
          },
        );
      } finally {
        w.dispose();
      }
      if (!Number.isFinite(result.errInit) || !Number.isFinite(result.errQ)) {
        freeResult(result);
        throw new UserError(`${t.name}: the init error came out ${result.errInit} (not a number): the matrix or its quantization is degenerate`);
      }
      const layer: LayerRecord = {
        name: t.name,
        shape: t.shape,
        bits: bits[i],
        method: o.method,
        err_q: result.errQ,
        err_init: result.errInit,
        step_errors: result.stepErrors,
        best_step: result.bestStep,
        stopped_early: result.stoppedEarly,
        error_rose: result.errorRose,
        residual_top_sv: result.residualSpectrum,
        seconds: 0,
      };
      await writing;
      const qf = quantizedFile;
      const af = adapterFile;
      writing = (async () => {
        try {
          const packed = await device.packCodes(result.quantized.codes, bits[i]);
          const absmax = await device.download(result.quantized.absmax);
          const loraA = await device.download(result.loraA);
          const loraB = await device.download(result.loraB);
          await qf.write(t.name, packed, absmax.data);
          await af.write({ name: t.name, loraA, loraB });
        } finally {
          freeResult(result);
        }
      })();
      writing.catch(() => undefined);
      layer.seconds = (performance.now() - t0) / 1000;
      layers.push(layer);
      doneParams += t.shape[0] * t.shape[1];
      onEvent?.({ type: 'layer', index: i, total: targets.length, layer, done_params: doneParams, total_params: totalParams });
    }
    await writing;
    const initSeconds = (performance.now() - started) / 1000;
    const gpu = device.memoryUsage();

    if (signal?.aborted) throw new CancelledError();
    await quantizedFile.finish();
    quantizedFile = null;
    onEvent?.({ type: 'phase', phase: 'quantized' });

    const adapterConfigInput: AdapterConfigInput = {
      rank: o.rank,
      alpha: o.alpha,
      rslora: o.rslora,
      targetModules: [...new Set(targets.map((t) => t.module))],
      baseModel: join(runDir, RUN_FILES.backbone),
      loftq: {
        method: o.method,
        bits: o.bits,
        bits_map: o.bitsMap ?? null,
        quant: o.quant,
        block_size: o.block,
        iters: o.method === 'loftq' ? o.iters : 0,
        svd: o.svd,
        seed: o.seed,
        source_model: modelDir,
      },
    };
    await adapterFile.finish(adapterConfigInput);
    adapterFile = null;
    // adapter/ starts as the init (training replaces it); the init stays in adapter-init/.
    const latest = join(runDir, RUN_FILES.adapter);
    try {
      await mkdir(latest, { recursive: true });
      await copyFile(join(runDir, RUN_FILES.adapterInit, ADAPTER_WEIGHTS), join(latest, ADAPTER_WEIGHTS));
    } catch (e) {
      throw fsError(e, latest, 'write');
    }
    await writeJsonAtomic(join(latest, ADAPTER_CONFIG), adapterConfig(adapterConfigInput));
    onEvent?.({ type: 'phase', phase: 'adapter' });

    if (signal?.aborted) throw new CancelledError();
    await writeRunBackbone(join(runDir, RUN_FILES.backbone), modelDir, weights, new Set(targets.map((t) => t.name)), () => {
      if (signal?.aborted) throw new CancelledError();
    });
    onEvent?.({ type: 'phase', phase: 'backbone' });
    await writeLayers(runDir, layers);

    const avgBits = averageBits(targets.map((t) => t.shape), bits, o.block, scaleBitsOf(o.quant));
    record.status = 'done';
    record.finished = new Date().toISOString();
    record.timings = { total_s: (performance.now() - started) / 1000, init_s: initSeconds, peak_rss_bytes: peakRssBytes(), ...(gpu ? { gpu_peak_bytes: gpu.peak } : {}) };
    record.summary = {
      ...summarize(layers, avgBits),
      target_params: totalParams,
      quantized_bytes: targets.reduce((s, t, i) => s + packedByteLength(t.shape[0] * t.shape[1], bits[i]) + Math.ceil((t.shape[0] * t.shape[1]) / o.block) * 4, 0),
      adapter_params: targets.reduce((s, t) => s + o.rank * (t.shape[0] + t.shape[1]), 0),
    };
    await writeRunRecord(runDir, record);
    onEvent?.({ type: 'result', run: runDir, record });
    return record;
  } catch (e) {
    readAhead.drop();
    await writing.catch(() => undefined);
    record.status = e instanceof CancelledError ? 'cancelled' : 'failed';
    record.finished = new Date().toISOString();
    record.timings = { total_s: (performance.now() - started) / 1000 };
    record.error = e instanceof Error ? e.message : String(e);
    // The means of the matrices that did finish, said as such (matrices of matrices_planned).
    if (layers.length > 0) record.summary = { ...summarize(layers, averageBits(targets.map((t) => t.shape), bits, o.block, scaleBitsOf(o.quant))), matrices_planned: targets.length };
    await quantizedFile?.abort();
    await adapterFile?.abort();
    // Keep what is complete and coherent: metrics of finished matrices; drop partial outputs.
    for (const partial of [RUN_FILES.quantized, RUN_FILES.adapter, RUN_FILES.adapterInit, RUN_FILES.backbone]) {
      await rm(join(runDir, partial), { recursive: true, force: true }).catch(() => undefined);
    }
    await writeLayers(runDir, layers).catch(() => undefined);
    await writeRunRecord(runDir, record).catch(() => undefined);
    throw e;
  } finally {
    forget();
    await files.close();
    await device.dispose();
  }
}
