// The quantize job: a local Hugging Face model → a run directory with the exact Q
// (quantized.safetensors), the LoRA init (adapter-init/ and adapter/, PEFT format), the
// dequantized backbone, and per-matrix metrics. Matrices are read and processed one at a
// time; the run is marked failed or cancelled on any interruption, never left half-written.
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CancelledError, UserError } from '../errors';
import { writeBackbone } from '../export/backbone';
import { writePeftAdapter, type AdapterMatrix } from '../export/peft';
import { readModelConfig, type ModelConfig } from '../io/hf-config';
import { findNonFinite } from '../io/dtypes';
import { fsError, readFully, writeFully } from '../io/fs-util';
import { openModelWeights, type ModelWeights } from '../io/model-weights';
import { discoverTargets, parseTargets, type Target } from '../io/targets';
import { initializerFor, loraScaling } from '../init';
import { packCodes, packedByteLength } from '../quant/packing';
import { ParallelQuantizer } from '../quant/parallel-quantizer';
import {
  prepareRunDir,
  RUN_FILES,
  RUN_FORMAT,
  writeLayers,
  writeRunRecord,
  type LayerRecord,
  type RunRecord,
} from '../runs/run-dir';
import { matrixInfo, QuantizedFile, writeQuantizedFile, type QuantizedEntry } from '../runs/quantized-file';
import { CpuBackend } from '../tensor/cpu-backend';
import { matrix } from '../tensor/matrix';
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
  if (targets.length === 0) throw new UserError(`${modelDir}: no target matrices found`);
  for (const t of targets) {
    const limit = Math.min(t.shape[0], t.shape[1]);
    if (o.rank > limit) {
      throw new UserError(`--rank ${o.rank} is larger than min(out, in) = ${limit} of ${t.name} [${t.shape.join(', ')}]`);
    }
  }
  const bits = assignBits(targets, o.bits, o.bitsMap);
  return { config, weights, targets, bits };
}

/** Mean bits per weight including the float32 absmax of each block. */
export function averageBits(targets: Target[], bits: number[], block: number): number {
  let params = 0;
  let storage = 0;
  targets.forEach((t, i) => {
    const n = t.shape[0] * t.shape[1];
    params += n;
    storage += n * bits[i] + Math.ceil(n / block) * 32;
  });
  return storage / params;
}

/** An append-only scratch file for packed codes, read back when quantized.safetensors is assembled. */
class CodeScratch {
  private offsets = new Map<string, { at: number; bytes: number }>();
  private end = 0;
  private constructor(readonly path: string, private readonly fh: FileHandle) {}

  static async create(path: string): Promise<CodeScratch> {
    try {
      return new CodeScratch(path, await open(path, 'w+'));
    } catch (e) {
      throw fsError(e, path, 'write');
    }
  }

  async append(name: string, bytes: Uint8Array): Promise<void> {
    try {
      await writeFully(this.fh, bytes);
    } catch (e) {
      throw fsError(e, this.path, 'write');
    }
    this.offsets.set(name, { at: this.end, bytes: bytes.length });
    this.end += bytes.length;
  }

  async read(name: string): Promise<Uint8Array> {
    const o = this.offsets.get(name);
    if (!o) throw new Error(`no scratch codes for ${name}`);
    const buf = new Uint8Array(o.bytes);
    await readFully(this.fh, buf, o.at, this.path, name);
    return buf;
  }

  async dispose(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }
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
  };
}

export async function runQuantize(o: QuantizeOptions, control: JobControl = {}): Promise<RunRecord> {
  const { signal, onEvent } = control;
  const plan = await planQuantize(o);
  const { config, weights, targets, bits } = plan;
  const modelDir = resolve(o.model);
  const runDir = await prepareRunDir(o.out, o.force);
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
    created: new Date().toISOString(),
    timings: {},
  };
  await writeRunRecord(runDir, record);

  const totalParams = targets.reduce((s, t) => s + t.shape[0] * t.shape[1], 0);
  onEvent?.({ type: 'start', job: 'quantize', run: runDir, matrices: targets.length, total_params: totalParams });
  const backend = new CpuBackend();
  const parallel = new ParallelQuantizer();
  const scratch = await CodeScratch.create(join(runDir, '.codes.scratch'));
  const initializer = initializerFor(o.method);
  const scaling = loraScaling(o.alpha, o.rank, o.rslora);
  const layers: LayerRecord[] = [];
  const adapter: AdapterMatrix[] = [];
  const quantizedEntries: QuantizedEntry[] = [];
  try {
    let doneParams = 0;
    for (let i = 0; i < targets.length; i++) {
      if (signal?.aborted) throw new CancelledError();
      const t = targets[i];
      const t0 = performance.now();
      onEvent?.({ type: 'matrix', index: i, total: targets.length, name: t.name, shape: t.shape, bits: bits[i] });
      const data = await weights.readF32(t.weight);
      const bad = findNonFinite(data);
      if (bad >= 0) {
        throw new UserError(`${t.weight} has a non-finite value (${data[bad]}) at [${Math.floor(bad / t.shape[1])}, ${bad % t.shape[1]}]`);
      }
      const spec = { kind: o.quant, bits: bits[i], blockSize: o.block };
      const result = await initializer.init(
        matrix(t.shape[0], t.shape[1], data),
        { quant: spec, rank: o.rank, scaling, iters: o.iters, svd: o.svd, seed: o.seed + i * 7919 },
        {
          backend,
          parallel,
          signal,
          onStep: (step, err) =>
            onEvent?.({ type: 'step', index: i, total: targets.length, name: t.name, step, iters: o.method === 'loftq' ? o.iters : 1, err }),
        },
      );
      const packed = packCodes(result.quantized.codes, spec.bits);
      await scratch.append(t.name, packed);
      quantizedEntries.push({ name: t.name, info: matrixInfo(t.shape, spec), absmax: result.quantized.absmax, codes: () => scratch.read(t.name) });
      adapter.push({ name: t.name, loraA: result.loraA, loraB: result.loraB });
      const layer: LayerRecord = {
        name: t.name,
        shape: t.shape,
        bits: spec.bits,
        method: o.method,
        err_q: result.errQ,
        err_init: result.errInit,
        step_errors: result.stepErrors,
        residual_top_sv: result.residualSpectrum.slice(0, 32),
        seconds: (performance.now() - t0) / 1000,
      };
      layers.push(layer);
      doneParams += t.shape[0] * t.shape[1];
      onEvent?.({ type: 'layer', index: i, total: targets.length, layer, done_params: doneParams, total_params: totalParams });
    }
    const initSeconds = (performance.now() - started) / 1000;

    if (signal?.aborted) throw new CancelledError();
    await writeQuantizedFile(join(runDir, RUN_FILES.quantized), quantizedEntries);
    await scratch.dispose();
    onEvent?.({ type: 'phase', phase: 'quantized' });

    const adapterConfig = {
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
    await writePeftAdapter(join(runDir, RUN_FILES.adapterInit), adapter, adapterConfig);
    await writePeftAdapter(join(runDir, RUN_FILES.adapter), adapter, adapterConfig);
    onEvent?.({ type: 'phase', phase: 'adapter' });

    if (signal?.aborted) throw new CancelledError();
    const backboneDir = join(runDir, RUN_FILES.backbone);
    await writeBackbone(backboneDir, modelDir, weights, await QuantizedFile.open(join(runDir, RUN_FILES.quantized)), {
      onTensor: () => {
        if (signal?.aborted) throw new CancelledError();
      },
    });
    onEvent?.({ type: 'phase', phase: 'backbone' });
    await writeLayers(runDir, layers);

    const avgBits = averageBits(targets, bits, o.block);
    record.status = 'done';
    record.finished = new Date().toISOString();
    record.timings = { total_s: (performance.now() - started) / 1000, init_s: initSeconds };
    record.summary = {
      ...summarize(layers, avgBits),
      target_params: totalParams,
      quantized_bytes: targets.reduce((s, t, i) => s + packedByteLength(t.shape[0] * t.shape[1], bits[i]) + Math.ceil((t.shape[0] * t.shape[1]) / o.block) * 4, 0),
      adapter_params: adapter.reduce((s, a) => s + a.loraA.data.length + a.loraB.data.length, 0),
    };
    await writeRunRecord(runDir, record);
    onEvent?.({ type: 'result', run: runDir, record });
    return record;
  } catch (e) {
    record.status = e instanceof CancelledError ? 'cancelled' : 'failed';
    record.finished = new Date().toISOString();
    record.timings = { total_s: (performance.now() - started) / 1000 };
    record.error = e instanceof Error ? e.message : String(e);
    await scratch.dispose();
    // Keep what is complete and coherent: metrics of finished matrices; drop partial outputs.
    for (const partial of [RUN_FILES.quantized, RUN_FILES.adapter, RUN_FILES.adapterInit, RUN_FILES.backbone]) {
      await rm(join(runDir, partial), { recursive: true, force: true }).catch(() => undefined);
    }
    await writeLayers(runDir, layers).catch(() => undefined);
    await writeRunRecord(runDir, record).catch(() => undefined);
    throw e;
  } finally {
    await backend.dispose();
    await parallel.dispose();
  }
}

