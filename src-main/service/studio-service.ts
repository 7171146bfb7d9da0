// StudioApi on top of the engine: the one implementation that both transports (the app's
// compute process over IPC, `loftq serve` over WebSocket) expose. It owns the runs folder:
// runs are created, renamed and deleted only inside it; exports go where the user chose.
import { existsSync, mkdirSync, watch, type FSWatcher } from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { availableParallelism, homedir, totalmem } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type {
  DemoData,
  EngineDevice,
  ApiEvent,
  EvalRequest,
  ExportRequest,
  JobInfo,
  JobKind,
  MetricRecord,
  QuantizeRequest,
  RunDetail,
  RunSummary,
  ModelProfile,
  ProfileRequest,
  StudioApi,
  TrainRequest,
} from '../api/contract';
import { UserError } from '../engine/errors';
import { writeJsonAtomic } from '../engine/io/atomic-write';
import { readTextFile } from '../engine/io/json-file';
import { isWithin, realPathOf } from '../engine/runs/ownership';
import { Pool } from '../engine/util/pool';

/** Heavy requests (model folders, whole runs) served at once; more wait their turn. */
const HEAVY_REQUESTS = 2;

/** Largest metrics.jsonl the dashboard reads. */
const MAX_METRICS_BYTES = 256 * 2 ** 20;
import type { JobEvent } from '../engine/jobs/events';
import { inspectModel } from '../engine/jobs/inspect';
import { JobQueue, type QueuedJob } from '../engine/jobs/job-queue';
import { runJobHere, type JobRunner } from '../engine/jobs/job-runner';
import { readCachedProfile } from '../engine/plan/profile-cache';
import { QUANTIZE_DEFAULTS } from '../engine/jobs/quantize-options';
import { checkDeviceChoice, cudaStatus } from '../engine/tensor/devices';
import { readJsonFile, readLayers, readRunRecord, RUN_FILES } from '../engine/runs/run-dir';
import { interruptedLabel, JobLog } from './job-log';
import { isKeepablePath, withRecent, type UserConfigStore } from './user-config';

/** The numeric settings of a TrainRequest, named as the app shows them. */
const TRAIN_LABELS = { steps: 'Steps', lr: 'Learning rate', batch: 'Batch', accum: 'Gradient accumulation', seqLen: 'Sequence length', warmup: 'Warm-up steps', evalEvery: 'Evaluate every', seed: 'Seed' } as const;
const TRAIN_NUMBERS = Object.keys(TRAIN_LABELS) as Array<keyof typeof TRAIN_LABELS>;

export interface StudioServiceOptions {
  runsDir: string;
  demoModel: string | null;
  version: string;
  transport: 'ipc' | 'websocket';
  /** Minimum milliseconds between progress events of one job (layer results always pass). */
  throttleMs?: number;
  /** The user's settings (the recent models); without it the list lives as long as the service. */
  config?: UserConfigStore | null;
  /** Where jobs run (default: on this thread; `loftq serve` puts CPU jobs on threads of their own). */
  runJob?: JobRunner;
}

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function checkRunName(name: unknown): string {
  if (typeof name !== 'string' || !RUN_NAME.test(name) || name.includes('..')) {
    throw new UserError(`run name must be 1–128 letters, digits, '.', '_' or '-' (got ${JSON.stringify(name)})`);
  }
  return name;
}

export class StudioService implements StudioApi {
  readonly runsDir: string;
  private readonly listeners = new Set<(e: ApiEvent) => void>();
  private readonly jobs = new Map<string, JobInfo>();
  private readonly lastSent = new Map<string, number>();
  private readonly queue: JobQueue;
  private readonly runJob: JobRunner;
  /** Requests that read model folders or whole runs: a few at a time, the rest queued (memory stays bounded). */
  private readonly heavy = new Pool(HEAVY_REQUESTS);
  private watcher: FSWatcher | null = null;
  private watchTimer: ReturnType<typeof setTimeout> | null = null;
  /** The job list kept in the runs folder: the last engine's jobs, then this one's. */
  private readonly jobLog: JobLog;
  private readonly jobsLoaded: Promise<void>;
  /** Set by close(): jobs cancelled from now on were interrupted by the engine stopping. */
  private closing = false;
  private memoryRecent: string[] = [];

  constructor(private readonly options: StudioServiceOptions) {
    this.runsDir = resolve(options.runsDir);
    this.runJob = options.runJob ?? runJobHere;
    this.queue = new JobQueue((job) => this.onQueueChange(job));
    mkdirSync(this.runsDir, { recursive: true });
    this.jobLog = new JobLog(this.runsDir);
    this.jobsLoaded = this.jobLog.load().then((old) => {
      // The last engine's jobs come first (older); a live one is now interrupted.
      const current = [...this.jobs.entries()];
      this.jobs.clear();
      for (const j of old) this.jobs.set(j.id, j);
      for (const [id, j] of current) this.jobs.set(id, j);
      if (old.length > 0) void this.saveJobs();
    });
    // Runs made or changed by something else (the CLI, another window) show up too; the
    // service's own dot-files (.jobs.json, .profiles/) are not runs.
    try {
      this.watcher = watch(this.runsDir, { recursive: true }, (_event, file) => {
        if (typeof file === 'string' && file.startsWith('.')) return;
        if (this.watchTimer) return;
        this.watchTimer = setTimeout(() => {
          this.watchTimer = null;
          this.emit({ type: 'runs-changed' });
        }, 1000);
      });
      this.watcher.on('error', () => this.stopWatching());
    } catch {
      this.watcher = null; // no recursive watch on this platform: changes made here still notify
    }
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.watchTimer) clearTimeout(this.watchTimer);
    this.watchTimer = null;
  }

  // --- events -------------------------------------------------------------------------

  onEvent(listener: (event: ApiEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: ApiEvent): void {
    for (const l of this.listeners) l(event);
  }

  private onQueueChange(job: QueuedJob): void {
    const info = this.jobs.get(job.id);
    if (!info) return;
    const was = info.state;
    info.state = job.state;
    if (job.state === 'done' || job.state === 'failed' || job.state === 'cancelled') {
      info.finished = new Date().toISOString();
      info.progress = job.state === 'done' ? 1 : info.progress;
      info.error = job.error?.message;
      info.result = job.result;
      info.label = job.state === 'done' ? 'done' : job.state === 'cancelled' ? 'cancelled' : `failed: ${job.error?.message}`;
      if (job.state === 'cancelled' && this.closing) {
        info.state = 'interrupted';
        info.label = interruptedLabel(was);
      }
    }
    this.emit({ type: 'job', job: { ...info } });
    void this.saveJobs();
    if (info.kind === 'quantize' || job.state === 'done') this.emit({ type: 'runs-changed' });
  }

  private progress(id: string, event: JobEvent): void {
    const info = this.jobs.get(id);
    if (!info) return;
    switch (event.type) {
      case 'matrix':
        info.progress = event.index / event.total;
        info.label = `${event.name} (${event.index + 1}/${event.total})`;
        info.done = event.index;
        info.total = event.total;
        break;
      case 'step':
        info.progress = (event.index + event.step / (event.iters + 1)) / event.total;
        break;
      case 'layer':
        info.progress = event.done_params / event.total_params;
        info.done = event.index + 1;
        info.total = event.total;
        break;
      case 'eval':
        info.progress = event.total_tokens > 0 ? event.done_tokens / event.total_tokens : 0;
        info.label =
          `perplexity (${event.weights}) ${event.done_tokens}/${event.total_tokens}` +
          (event.tokens_per_s ? ` · ${Math.round(event.tokens_per_s).toLocaleString('en-US')} tokens/s` : '') +
          (event.device_memory ? ` · GPU memory ${(event.device_memory.in_use / 2 ** 30).toFixed(1)} GiB (peak ${(event.device_memory.peak / 2 ** 30).toFixed(1)})` : '') +
          (event.where ? ` · ${event.where}` : '');
        break;
      case 'phase':
        info.label = `writing ${event.phase}`;
        break;
      case 'train':
        info.progress = event.steps > 0 ? event.step / event.steps : 0;
        info.label = event.eval_ppl !== undefined ? `step ${event.step}/${event.steps} · held-out perplexity ${event.eval_ppl.toFixed(3)}` : `step ${event.step}/${event.steps}${event.loss !== undefined ? ` · loss ${event.loss.toFixed(4)}` : ''}`;
        break;
      default:
        break;
    }
    // Layer results carry data the UI draws; the rest is throttled to keep the UI smooth.
    const now = Date.now();
    const throttle = this.options.throttleMs ?? 100;
    if (event.type !== 'layer' && event.type !== 'phase' && now - (this.lastSent.get(id) ?? 0) < throttle) return;
    this.lastSent.set(id, now);
    this.emit({ type: 'job', job: { ...info }, event });
  }

  private submit(kind: JobKind, target: string, work: (signal: AbortSignal, onEvent: (e: JobEvent) => void) => Promise<unknown>): JobInfo {
    let id = '';
    const job = this.queue.submit((signal) => work(signal, (e) => this.progress(id, e)));
    id = job.id;
    const info: JobInfo = { id, kind, state: job.state, target, progress: 0, label: 'queued', started: new Date().toISOString() };
    this.jobs.set(id, info);
    this.emit({ type: 'job', job: { ...info } });
    void this.saveJobs();
    return { ...info };
  }

  // --- paths ----------------------------------------------------------------------------

  /** A run folder inside the runs folder (the only place runs are changed). */
  /**
   * A run folder named by a request, as a real path inside the runs folder: the name is
   * checked as written and again with every symlink resolved, so a link inside the runs folder
   * cannot lead a request (read, rename, delete, export, eval) outside it.
   */
  private async runPath(dir: unknown): Promise<string> {
    if (typeof dir !== 'string' || dir === '') throw new UserError('a run folder is required');
    const path = resolve(this.runsDir, dir);
    const rel = relative(this.runsDir, path);
    if (rel === '' || isAbsolute(rel) || rel.split(sep).includes('..')) {
      throw new UserError(`${oneLine(path)} is not inside the runs folder ${this.runsDir}`);
    }
    const real = await realPathOf(path);
    const root = await realPathOf(this.runsDir);
    if (real === root || !isWithin(real, root)) throw new UserError(`${oneLine(path)} resolves to ${oneLine(real)}, outside the runs folder ${root}`);
    return real;
  }

  private busy(dir: string): boolean {
    for (const j of this.jobs.values()) if ((j.state === 'queued' || j.state === 'running') && j.target === dir) return true;
    return false;
  }

  // --- StudioApi ------------------------------------------------------------------------

  async info() {
    return { runsDir: this.runsDir, demoModel: this.options.demoModel, demoData: this.demoData(), version: this.options.version, transport: this.options.transport, device: await this.engineDevice() };
  }

  /** assets/demo-data next to the demo model, when both of its texts are there. */
  private demoData(): DemoData | null {
    if (!this.options.demoModel) return null;
    const dir = join(dirname(this.options.demoModel), 'demo-data');
    const data = { train: join(dir, 'train.txt'), eval: join(dir, 'eval.txt') };
    return existsSync(data.train) && existsSync(data.eval) ? data : null;
  }

  private deviceProbe: Promise<EngineDevice> | null = null;

  /** What `auto` runs on here (probed once: it opens the GPU to see that it answers). */
  private engineDevice(): Promise<EngineDevice> {
    this.deviceProbe ??= cudaStatus().then(({ info, reason }) => {
      const cores = availableParallelism();
      const chosen = info ?? { kind: 'cpu' as const, name: `CPU (${cores} threads)`, memoryBytes: totalmem(), cores };
      return {
        kind: chosen.kind,
        name: chosen.name,
        memory_bytes: chosen.memoryBytes,
        cores: chosen.cores,
        cuda: { available: info !== null, reason },
      };
    });
    return this.deviceProbe;
  }

  async inspectModel(path: string) {
    if (typeof path !== 'string' || path.trim() === '') throw new UserError('a model folder is required');
    return this.heavy.run(() => inspectModel(expandHome(path)));
  }

  async listRuns(): Promise<RunSummary[]> {
    const runs: RunSummary[] = [];
    const visit = async (dir: string, depth: number) => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (!e.isDirectory() || e.name.startsWith('.')) continue;
        const path = join(dir, e.name);
        if (existsSync(join(path, RUN_FILES.run))) {
          try {
            runs.push({ dir: path, name: relative(this.runsDir, path), record: await readRunRecord(path) });
          } catch {
            // A folder with a broken run.json is not listed; opening it reports why.
          }
        } else if (depth < 2) await visit(path, depth + 1);
      }
    };
    await visit(this.runsDir, 0);
    return runs.sort((a, b) => b.record.created.localeCompare(a.record.created));
  }

  async getRun(dir: string): Promise<RunDetail> {
    return this.heavy.run(() => this.readRun(dir));
  }

  private async readRun(dir: string): Promise<RunDetail> {
    const path = await this.runPath(dir);
    const record = await readRunRecord(path);
    const layers = existsSync(join(path, RUN_FILES.layers)) ? await readLayers(path) : [];
    let metrics: MetricRecord[] = [];
    const metricsPath = join(path, RUN_FILES.metrics);
    if (existsSync(metricsPath)) {
      // Bounded like every file the service reads (a training run's metrics stay far below it).
      metrics = (await readTextFile(metricsPath, MAX_METRICS_BYTES))
        .split('\n')
        .filter((l) => l.trim() !== '')
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as MetricRecord];
          } catch {
            return []; // a line cut by a crash mid-append
          }
        });
    }
    return { dir: path, name: relative(this.runsDir, path), record, layers, metrics };
  }

  async renameRun(dir: string, name: string): Promise<RunSummary> {
    const from = await this.runPath(dir);
    const to = join(dirname(from), checkRunName(name));
    await readRunRecord(from);
    if (this.busy(from)) throw new UserError(`${basename(from)} has a job running; wait for it or cancel it first`);
    if (existsSync(to)) throw new UserError(`a run named ${name} already exists`);
    await rename(from, to);
    // The adapters name their backbone by absolute path; keep them pointing at it.
    for (const adapter of [RUN_FILES.adapter, RUN_FILES.adapterInit]) {
      const configPath = join(to, adapter, 'adapter_config.json');
      if (!existsSync(configPath)) continue;
      const config = await readJsonFile<Record<string, unknown>>(configPath);
      config.base_model_name_or_path = join(to, RUN_FILES.backbone);
      await writeJsonAtomic(configPath, config);
    }
    this.emit({ type: 'runs-changed' });
    return { dir: to, name: relative(this.runsDir, to), record: await readRunRecord(to) };
  }

  async deleteRun(dir: string): Promise<void> {
    const path = await this.runPath(dir);
    if (!(await stat(path).catch(() => null))?.isDirectory() || !existsSync(join(path, RUN_FILES.run))) {
      throw new UserError(`${path} is not a run directory`);
    }
    if (this.busy(path)) throw new UserError(`${basename(path)} has a job running; cancel it first`);
    await rm(path, { recursive: true, force: true });
    this.emit({ type: 'runs-changed' });
  }

  async startQuantize(r: QuantizeRequest): Promise<JobInfo> {
    const out = join(this.runsDir, checkRunName(r?.name));
    if (existsSync(out)) throw new UserError(`a run named ${r.name} already exists`);
    const options = {
      ...QUANTIZE_DEFAULTS,
      model: expandHome(String(r.model)),
      out,
      method: r.method,
      bits: Number(r.bits),
      bitsMap: r.bitsMap || undefined,
      quant: r.quant,
      block: Number(r.block),
      rank: Number(r.rank),
      alpha: Number(r.alpha),
      rslora: Boolean(r.rslora),
      iters: Number(r.iters),
      svd: r.svd,
      targets: String(r.targets ?? 'all-linear'),
      seed: Number(r.seed ?? 0),
      device: checkDeviceChoice(String(r.device ?? 'auto')),
      force: false,
    };
    return this.submit('quantize', out, (signal, onEvent) => this.runJob('quantize', options, { signal, onEvent }));
  }

  async startExport(r: ExportRequest): Promise<JobInfo> {
    const run = await this.runPath(r?.run);
    if (typeof r.out !== 'string' || r.out.trim() === '') throw new UserError('an output folder is required');
    return this.submit('export', run, (signal, onEvent) => this.runJob('export', { run, format: r.format, out: expandHome(r.out), force: r.force === true }, { signal, onEvent }));
  }

  async startEval(r: EvalRequest): Promise<JobInfo> {
    if (typeof r?.data !== 'string' || r.data.trim() === '') throw new UserError('a dataset file is required');
    // A run is evaluated only inside the runs folder; a model folder may be anywhere (read only).
    const named = resolve(this.runsDir, expandHome(String(r.target)));
    const target = existsSync(join(named, RUN_FILES.run)) || isWithin(named, this.runsDir) ? await this.runPath(String(r.target)) : named;
    const device = checkDeviceChoice(String(r.device ?? 'auto'));
    if (r.precision !== undefined && r.precision !== 'bf16' && r.precision !== 'fp32') throw new UserError('the precision must be bf16 or fp32');
    if (r.batch !== undefined && !(Number.isInteger(r.batch) && r.batch >= 1 && r.batch <= 1024)) throw new UserError('the batch must be a whole number from 1 to 1024');
    return this.submit('eval', target, (signal, onEvent) =>
      this.runJob('eval', { target, data: expandHome(r.data), field: r.field, seqLen: r.seqLen, stride: r.stride, maxTokens: r.maxTokens, device, precision: r.precision, batch: r.batch }, { signal, onEvent }),
    );
  }

  async startTrain(r: TrainRequest): Promise<JobInfo> {
    const run = await this.runPath(r?.run);
    if (typeof r.data !== 'string' || r.data.trim() === '') throw new UserError('a training data file is required');
    if (r.evalData !== undefined && (typeof r.evalData !== 'string' || r.evalData.trim() === '')) throw new UserError('the held-out data file must be a path');
    if (r.field !== undefined && typeof r.field !== 'string') throw new UserError('the text field must be a name');
    // Numbers only here; the engine checks each one's range (the same rules as `loftq train`).
    const settings: Record<string, number> = {};
    for (const key of TRAIN_NUMBERS) {
      const v = r[key];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`${TRAIN_LABELS[key]} must be a number`);
      settings[key] = v;
    }
    const device = checkDeviceChoice(String(r.device ?? 'auto'));
    if (r.precision !== undefined && r.precision !== 'bf16' && r.precision !== 'fp32') throw new UserError('the precision must be bf16 or fp32');
    if (this.busy(run)) throw new UserError(`${basename(run)} has a job running; wait for it or cancel it first`);
    return this.submit('train', run, (signal, onEvent) =>
      this.runJob('train', { run, data: expandHome(r.data), field: r.field, evalData: r.evalData === undefined ? undefined : expandHome(r.evalData), ...settings, device, precision: r.precision }, { signal, onEvent }),
    );
  }

  async startProfile(r: ProfileRequest): Promise<JobInfo> {
    const o = this.profileOptions(r);
    return this.submit('profile', o.model, (signal, onEvent) => this.runJob('profile', { ...o, runsDir: this.runsDir }, { signal, onEvent }));
  }

  async getProfile(r: ProfileRequest): Promise<ModelProfile | null> {
    const o = this.profileOptions(r);
    return this.heavy.run(() => readCachedProfile(this.runsDir, o.model, o.quant, o.block));
  }

  private profileOptions(r: ProfileRequest) {
    if (typeof r?.model !== 'string' || r.model.trim() === '') throw new UserError('a model folder is required');
    if (r.quant !== 'nf' && r.quant !== 'uniform' && r.quant !== 'ggml') throw new UserError('the quantizer must be nf, uniform or ggml');
    const block = Number(r.block);
    if (!Number.isSafeInteger(block) || block < 1) throw new UserError('Block size must be a positive whole number');
    if (r.quant === 'ggml' && block !== 32) throw new UserError("llama.cpp's q4_0 and q8_0 use blocks of 32");
    const maxRank = r.maxRank === undefined ? 64 : Number(r.maxRank);
    return { model: resolve(expandHome(r.model)), quant: r.quant, block, maxRank, device: checkDeviceChoice(String(r.device ?? 'auto')) };
  }

  async cancelJob(id: string): Promise<void> {
    if (!this.queue.cancel(String(id))) throw new UserError(`no running or queued job ${id}`);
  }

  async listJobs(): Promise<JobInfo[]> {
    await this.jobsLoaded;
    return [...this.jobs.values()].map((j) => ({ ...j }));
  }

  private async saveJobs(): Promise<void> {
    await this.jobsLoaded;
    await this.jobLog.save([...this.jobs.values()]);
  }

  async recentModels(): Promise<string[]> {
    const config = this.options.config;
    return config ? ((await config.read()).recent_models ?? []) : [...this.memoryRecent];
  }

  async rememberModel(path: string): Promise<string[]> {
    if (!isKeepablePath(path)) throw new UserError('a model folder path is required (one line, at most 4096 characters)');
    return this.changeRecent((list) => withRecent(list, path));
  }

  async forgetModel(path: string): Promise<string[]> {
    if (typeof path !== 'string') throw new UserError('a model folder path is required');
    return this.changeRecent((list) => list.filter((p) => p !== path));
  }

  private async changeRecent(change: (list: string[]) => string[]): Promise<string[]> {
    const config = this.options.config;
    if (!config) return (this.memoryRecent = change(this.memoryRecent));
    const next = await config.update((c) => ({ ...c, recent_models: change(c.recent_models ?? []) }));
    return next.recent_models ?? [];
  }

  /** Cancels everything and waits for the running job to wind down (server shutdown); those jobs are kept as interrupted. */
  async close(): Promise<void> {
    this.stopWatching();
    this.closing = true;
    this.queue.cancelAll();
    await this.queue.idle();
    await this.saveJobs();
  }
}

/** `~` and `~/…` as the user's home folder, as a shell would (typed paths in the app). */
export function expandHome(p: string): string {
  if (p === '~') return homedir();
  return p.startsWith('~/') || (sep === '\\' && p.startsWith('~\\')) ? join(homedir(), p.slice(2)) : p;
}

/** A path as it goes into a one-line message: control characters (a newline in a name) escaped. */
function oneLine(p: string): string {
  return JSON.stringify(p).slice(1, -1);
}
