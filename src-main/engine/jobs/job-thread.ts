// Jobs on a thread of their own, so that a server's event loop never waits on one. On the CPU
// a job's heavy steps are synchronous for their whole length (onnxruntime-node runs a session
// on the calling thread; dequantizing a layer is a JavaScript loop): on the server's thread,
// one layer of a large model would hold every request, cancel included, for seconds.
// The thread loads the bundle it was started from (the host's entry, which calls
// serveJobThread when it finds itself on a job thread), runs the job there, and posts its
// events and outcome back; a cancel reaches it as a message between its steps.
// GPU jobs stay on the calling thread: their work is already off it (the device's own stream
// and libuv workers), and the CUDA addon holds one context per process.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { CancelledError, UserError } from '../errors';
import { cudaStatus } from '../tensor/devices';
import { runJobHere, type JobControl, type JobOptions, type JobRunner, type RunnableJob } from './job-runner';

const FLAG = 'loftqJobThread';

/** The file a job thread loads (the running bundle); null: jobs run on the calling thread. */
let entryFile: string | null = null;

/** Lets jobThreadRunner start threads that load `file`: the bundle's entry, which must call serveJobThread on such a thread. */
export function enableJobThreads(file: string): void {
  entryFile = file;
}

/** This thread was started to run one job (the entry then serves it instead of its own main). */
export function isJobThread(): boolean {
  return !isMainThread && typeof workerData === 'object' && workerData !== null && (workerData as Record<string, unknown>)[FLAG] === true;
}

interface Outcome {
  event?: unknown;
  result?: unknown;
  error?: { message: string; user: boolean; cancelled: boolean; stack?: string };
}

/** On a job thread: runs the job workerData names, posting its events, then its result or error. */
export function serveJobThread(): void {
  const port = parentPort;
  if (!port) throw new Error('serveJobThread runs on a job thread only');
  const { kind, options } = workerData as { kind: RunnableJob; options: JobOptions[RunnableJob] };
  const controller = new AbortController();
  port.on('message', (m) => {
    if (m === 'abort') controller.abort();
  });
  const post = (o: Outcome) => port.postMessage(o);
  runJobHere(kind, options, { signal: controller.signal, onEvent: (event) => post({ event }) }).then(
    (result) => post({ result }),
    (e: unknown) => {
      const error = e instanceof Error ? e : new Error(String(e));
      post({ error: { message: error.message, user: e instanceof UserError, cancelled: e instanceof CancelledError || controller.signal.aborted, stack: error.stack } });
    },
  );
}

/** The error the job threw, as the same kind of error on this side. */
function rebuild(e: NonNullable<Outcome['error']>): Error {
  if (e.cancelled) return new CancelledError();
  if (e.user) return new UserError(e.message);
  const error = new Error(e.message);
  if (e.stack) error.stack = e.stack;
  return error;
}

function onThread<K extends RunnableJob>(file: string, kind: K, options: JobOptions[K], control: JobControl): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(file, { workerData: { [FLAG]: true, kind, options }, argv: [] });
    let settled = false;
    const abort = () => worker.postMessage('abort');
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      control.signal?.removeEventListener('abort', abort);
      void worker.terminate();
      settle();
    };
    worker.on('message', (m: Outcome) => {
      if (m.event !== undefined) control.onEvent?.(m.event as Parameters<NonNullable<JobControl['onEvent']>>[0]);
      else if (m.error !== undefined) finish(() => reject(rebuild(m.error!)));
      else finish(() => resolve(m.result));
    });
    worker.on('error', (e) => finish(() => reject(e)));
    worker.on('exit', (code) => finish(() => reject(new Error(`the job's thread ended (exit code ${code}) before the job did`))));
    if (control.signal?.aborted) abort();
    else control.signal?.addEventListener('abort', abort, { once: true });
  });
}

/**
 * A runner that puts CPU jobs on their own thread once enableJobThreads has named the entry
 * (and runs everything on the calling thread otherwise: tests, scripts, the CLI's own jobs).
 */
export function jobThreadRunner(): JobRunner {
  let gpu: Promise<boolean> | null = null;
  const onCpu = async (device: unknown): Promise<boolean> => {
    if (device === 'cpu') return true;
    if (device === 'cuda') return false;
    // auto: the GPU when one answers (probed once, here, so the addon is loaded by this thread first).
    gpu ??= cudaStatus().then(
      ({ info }) => info !== null,
      () => false,
    );
    return !(await gpu);
  };
  return async (kind, options, control) => {
    const file = entryFile;
    if (file === null || !(await onCpu((options as { device?: unknown }).device ?? 'auto'))) return runJobHere(kind, options, control);
    return onThread(file, kind, options, control);
  };
}
