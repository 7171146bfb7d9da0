// An in-memory ClientApi for component tests: every method a vi.fn with a sensible default,
// and `emit` to push events as the server would.
import { vi } from 'vitest';
import type { ApiEvent, JobInfo, ModelSummary, RunSummary, TargetInfo } from '../../src-main/api/contract';
import { LLAMA_MODULES, modulePath } from '../../src-main/engine/rules/modules';
import type { ClientApi, ConnectionStatus } from '../transport/types';

export function fakeApi(overrides: Partial<ClientApi> = {}) {
  // The engine's recent-models list (the user's config folder), in memory.
  let recent: string[] = [];
  const listeners = new Set<(e: ApiEvent) => void>();
  const statusListeners = new Set<(s: ConnectionStatus) => void>();
  let status: ConnectionStatus = { state: 'open', attempt: 0 };
  const api: ClientApi = {
    transport: 'websocket',
    status: () => status,
    onStatus: (l) => {
      statusListeners.add(l);
      return () => statusListeners.delete(l);
    },
    reconnect: vi.fn(),
    dispose: vi.fn(),
    onEvent: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    info: vi.fn(async () => ({
      runsDir: '/runs',
      demoModel: '/demo',
      demoData: { train: '/demo-data/train.txt', eval: '/demo-data/eval.txt' },
      version: '0.1.0',
      transport: 'websocket' as const,
      device: { kind: 'cpu' as const, name: 'CPU (2 threads)', memory_bytes: 24 * 2 ** 30, cores: 2, cuda: { available: false, reason: 'the CUDA addon is not built' } },
    })),
    inspectModel: vi.fn(async (path: string) => demoSummary(path)),
    listRuns: vi.fn(async () => [] as RunSummary[]),
    getRun: vi.fn(async () => {
      throw new Error('no run');
    }),
    renameRun: vi.fn(),
    deleteRun: vi.fn(async () => undefined),
    startQuantize: vi.fn(async (r) => job({ id: 'job-1', target: `/runs/${r.name}`, state: 'queued' })),
    startExport: vi.fn(),
    startEval: vi.fn(),
    startTrain: vi.fn(async (r) => job({ id: 'job-t', kind: 'train', target: r.run, state: 'queued' })),
    startProfile: vi.fn(async (r) => job({ id: 'job-p', kind: 'profile', target: r.model, state: 'queued' })),
    getProfile: vi.fn(async () => null),
    cancelJob: vi.fn(async () => undefined),
    listJobs: vi.fn(async () => [] as JobInfo[]),
    recentModels: vi.fn(async () => [...recent]),
    rememberModel: vi.fn(async (path: string) => (recent = [path, ...recent.filter((p) => p !== path)].slice(0, 8))),
    forgetModel: vi.fn(async (path: string) => (recent = recent.filter((p) => p !== path))),
    ...overrides,
  };
  return {
    api,
    emit: (e: ApiEvent) => listeners.forEach((l) => l(e)),
    setStatus: (s: ConnectionStatus) => {
      status = s;
      statusListeners.forEach((l) => l(s));
    },
  };
}

export function job(partial: Partial<JobInfo>): JobInfo {
  return { id: 'job-1', kind: 'quantize', state: 'running', target: '/runs/x', progress: 0, label: '', started: '2026-01-01T00:00:00.000Z', ...partial };
}

/** The demo model's shape (4 layers by default), as inspectModel reports it. */
export function demoSummary(path = '/demo', layers = 4): ModelSummary {
  const shapes: Record<string, [number, number]> = {
    q_proj: [192, 192],
    k_proj: [64, 192],
    v_proj: [64, 192],
    o_proj: [192, 192],
    gate_proj: [512, 192],
    up_proj: [512, 192],
    down_proj: [192, 512],
  };
  const targets: TargetInfo[] = [];
  for (let layer = 0; layer < layers; layer++) {
    for (const module of LLAMA_MODULES) targets.push({ name: modulePath(layer, module), module, layer, shape: shapes[module], dtype: 'BF16' });
  }
  const targetParams = targets.reduce((s, t) => s + t.shape[0] * t.shape[1], 0);
  return {
    path,
    architecture: 'llama',
    layers,
    hidden_size: 192,
    intermediate_size: 512,
    heads: 6,
    kv_heads: 2,
    head_dim: 32,
    vocab_size: 512,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    parameters: targetParams + 198_336,
    weight_bytes: (targetParams + 198_336) * 2,
    weight_files: 1,
    target_parameters: targetParams,
    targets,
  };
}

export function runSummary(name: string, extra: { method?: string; bits?: number; status?: RunSummary['record']['status']; mean_err_init?: number } = {}): RunSummary {
  return {
    dir: `/runs/${name}`,
    name,
    record: {
      format: 'loftq-run/1',
      kind: 'quantize',
      status: extra.status ?? 'done',
      config: { method: extra.method ?? 'loftq', bits: extra.bits ?? 2, bits_map: null, rank: 16, alpha: 16, iters: 5, quant: 'nf', block: 64 },
      model: {},
      created: '2026-01-01T00:00:00.000Z',
      finished: '2026-01-01T00:00:01.000Z',
      timings: { total_s: 1.2 },
      summary: { matrices: 28, mean_err_q: 0.58, mean_err_init: extra.mean_err_init ?? 0.42, max_err_init: 0.46, avg_bits: 2.5, quantized_bytes: 491520, adapter_params: 217088 },
    },
  };
}
