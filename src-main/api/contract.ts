// The typed contract between the UI and the engine (types only): what the renderer may ask
// (StudioApi), what it is told (ApiEvent), and the records it receives. The same contract
// runs over Electron IPC (preload) and over WebSocket (loftq serve); nothing else differs.
import type { JobEvent } from '../engine/jobs/events';
import type { MatrixProfile, ModelProfile } from '../engine/rules/planner';
import type { LayerRecord, RunRecord, RunStatus } from '../engine/runs/records';

export type { JobEvent, LayerRecord, MatrixProfile, ModelProfile, RunRecord, RunStatus };

export interface TargetInfo {
  name: string;
  module: string;
  layer: number;
  shape: [number, number];
  dtype: string;
}

export interface ModelSummary {
  path: string;
  architecture: string;
  layers: number;
  hidden_size: number;
  intermediate_size: number;
  heads: number;
  kv_heads: number;
  head_dim: number;
  vocab_size: number;
  tie_word_embeddings: boolean;
  torch_dtype: string;
  parameters: number;
  weight_bytes: number;
  weight_files: number;
  target_parameters: number;
  targets: TargetInfo[];
}

/** One line of a run's metrics.jsonl: a training step or an evaluation. */
export type MetricRecord =
  | { step: number; loss: number; lr: number; grad_norm: number; tokens_per_s: number; time: number | string }
  | { step: number; split: string; eval_ppl: number; tokens: number; weights: 'fp' | 'q' | 'q+lora'; [key: string]: unknown };

export interface RunSummary {
  /** Absolute folder of the run. */
  dir: string;
  /** The folder's name (what rename changes). */
  name: string;
  record: RunRecord;
}

export interface RunDetail extends RunSummary {
  layers: LayerRecord[];
  metrics: MetricRecord[];
}

/** The demo model's texts (assets/demo-data): what it was trained on and its held-out text. */
export interface DemoData {
  train: string;
  eval: string;
}

/** The device the engine computes on by default (`auto`), and whether the GPU can be used. */
export interface EngineDevice {
  kind: 'cpu' | 'cuda';
  /** "NVIDIA H200" or "CPU (16 threads)". */
  name: string;
  memory_bytes: number;
  /** GPU multiprocessors, or CPU threads. */
  cores: number;
  /** Whether a job may ask for the GPU, and why not when it may not. */
  cuda: { available: boolean; reason: string };
}

export type DeviceChoice = 'auto' | 'cpu' | 'cuda';

export interface QuantizeRequest {
  model: string;
  /** Folder name of the new run inside the runs folder. */
  name: string;
  method: 'qlora' | 'loftq';
  bits: number;
  bitsMap?: string;
  /** ggml: llama.cpp's q4_0 (bits 4) or q8_0 (bits 8), block 32. */
  quant: 'nf' | 'uniform' | 'ggml';
  block: number;
  rank: number;
  alpha: number;
  rslora: boolean;
  iters: number;
  svd: 'randomized' | 'exact';
  targets: string;
  seed: number;
  /** Where the job runs; auto (the default) takes the GPU when one answers. */
  device?: DeviceChoice;
}

export interface ExportRequest {
  run: string;
  /** gguf: model.gguf (the run's base) + adapter.gguf for llama.cpp. */
  format: 'peft' | 'gguf' | 'merged';
  /** A folder the user chose (native dialog in the app, a typed path in web mode). */
  out: string;
  force?: boolean;
}

export interface EvalRequest {
  target: string;
  data: string;
  field?: string;
  seqLen?: number;
  stride?: number;
  maxTokens?: number;
  /** Where the model runs; auto (default) takes the GPU when one answers. */
  device?: DeviceChoice;
  /** On a GPU: bf16 products with float32 accumulation (default) or float32 throughout. */
  precision?: 'bf16' | 'fp32';
  /** Windows run together (default: 1 on the CPU, about 8192 tokens on a GPU). */
  batch?: number;
}

/** Fine-tuning a run's LoRA adapter on its quantized backbone (`loftq train`); unset fields take the CLI's defaults. */
export interface TrainRequest {
  run: string;
  data: string;
  field?: string;
  /** A separate held-out file; without it the last rows of `data` are held out. */
  evalData?: string;
  steps?: number;
  lr?: number;
  batch?: number;
  accum?: number;
  seqLen?: number;
  warmup?: number;
  evalEvery?: number;
  seed?: number;
  /** Where the gradients are computed; auto (default) takes the GPU when one answers. Not part of what a resume must match. */
  device?: DeviceChoice;
  /** On a GPU: bf16 products with float32 accumulation (default) or float32 throughout. */
  precision?: 'bf16' | 'fp32';
}

/** The planner's profile of a model for one quantizer and block size (jobs/profile-job.ts). */
export interface ProfileRequest {
  model: string;
  quant: 'nf' | 'uniform' | 'ggml';
  block: number;
  /** Singular values kept per matrix (default 64). */
  maxRank?: number;
  device?: DeviceChoice;
}

export type JobKind = 'quantize' | 'export' | 'eval' | 'train' | 'profile';
/** interrupted: the engine stopped (a restart, a crash) while the job was queued or running. */
export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export interface JobInfo {
  id: string;
  kind: JobKind;
  state: JobState;
  /** What the job works on: the run folder, or the model for eval. */
  target: string;
  /** 0..1 */
  progress: number;
  /** Units finished and planned, when the job counts them (quantize and profile: matrices). */
  done?: number;
  total?: number;
  label: string;
  error?: string;
  /** The job's result when done (export: the files; eval: the perplexities). */
  result?: unknown;
  started: string;
  finished?: string;
}

export type ApiEvent =
  | { type: 'job'; job: JobInfo; event?: JobEvent }
  | { type: 'runs-changed' }
  /** App only (File → Open Model Folder…): the user chose a model folder in the native dialog. */
  | { type: 'open-model'; path: string };

/** What a native folder/file dialog is for (app only; see StudioApi.pickFolder). */
export type PickPurpose = 'model' | 'export' | 'data';

export interface StudioApi {
  /** Server facts: the runs folder and the demo model's path (null when missing). */
  info(): Promise<{ runsDir: string; demoModel: string | null; demoData: DemoData | null; version: string; transport: 'ipc' | 'websocket'; device: EngineDevice }>;
  inspectModel(path: string): Promise<ModelSummary>;
  listRuns(): Promise<RunSummary[]>;
  getRun(dir: string): Promise<RunDetail>;
  renameRun(dir: string, name: string): Promise<RunSummary>;
  deleteRun(dir: string): Promise<void>;
  startQuantize(request: QuantizeRequest): Promise<JobInfo>;
  startExport(request: ExportRequest): Promise<JobInfo>;
  startEval(request: EvalRequest): Promise<JobInfo>;
  /** Trains the run's adapter; the same settings on a stopped run resume it exactly. */
  startTrain(request: TrainRequest): Promise<JobInfo>;
  /** Profiles a model for the planner (cached: a second request for the same model is instant). */
  startProfile(request: ProfileRequest): Promise<JobInfo>;
  /** The cached profile of a model for this quantizer and block size, or null. */
  getProfile(request: ProfileRequest): Promise<ModelProfile | null>;
  cancelJob(id: string): Promise<void>;
  listJobs(): Promise<JobInfo[]>;
  /** The model folders opened recently, newest first (kept in the user's config folder). */
  recentModels(): Promise<string[]>;
  /** Puts a model folder first in the recent list; resolves with the list. */
  rememberModel(path: string): Promise<string[]>;
  /** Takes a model folder off the recent list; resolves with the list. */
  forgetModel(path: string): Promise<string[]>;
  /** Subscribes to events; returns the unsubscribe function. */
  onEvent(listener: (event: ApiEvent) => void): () => void;
  /**
   * App only (IPC; absent in web mode): a native dialog. 'model' and 'export' choose a folder
   * ('export' may create one); 'data' chooses a dataset file (.txt, .jsonl, .parquet).
   * Resolves with the absolute path, or null when the user cancels.
   */
  pickFolder?(purpose: PickPurpose): Promise<string | null>;
  /** Shows a run's folder in the OS file manager (app only). */
  revealPath?(path: string): Promise<void>;
}

/** The methods carried over the wire (pickFolder runs in the app's main process only). */
export type ApiMethod = Exclude<keyof StudioApi, 'onEvent' | 'pickFolder' | 'revealPath'>;

/** Every method a transport may carry, for validation at the boundary. */
export const API_METHODS: readonly ApiMethod[] = [
  'info', 'inspectModel', 'listRuns', 'getRun', 'renameRun', 'deleteRun', 'startQuantize', 'startExport', 'startEval', 'startTrain', 'startProfile', 'getProfile', 'cancelJob', 'listJobs',
  'recentModels', 'rememberModel', 'forgetModel',
];

/** Wire format of the WebSocket transport (and the IPC one). */
export type WireMessage =
  | { kind: 'request'; id: number; method: ApiMethod; params: unknown[] }
  | { kind: 'response'; id: number; ok: true; result: unknown }
  | { kind: 'response'; id: number; ok: false; error: { message: string; user: boolean } }
  | { kind: 'event'; event: ApiEvent };
