// The tokenizer library (@huggingface/tokenizers) run on a worker thread of its own. A
// tokenizer.json is data from anywhere, and its regular expressions run on JavaScript's
// backtracking engine: a pattern like `(\w+\s?)*$` takes exponential time on a few hundred
// bytes. Here it cannot freeze the caller (the server's event loop, the CLI's signal handling):
// every call has a time budget and is cancellable, and either ends the thread at once
// (terminating a worker interrupts even a running regex), failing the job in one line.
// The library is loaded from its source text (read here, evaluated there), so this works the
// same from the sources, the CLI bundle and the app's asar archive.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { CancelledError, UserError } from '../errors';
import { jsonDepth } from '../io/json-file';
import { summarizeTokenizerJson, type TokenizerSummary } from './tokenizer-summary';

/** Default time one encode or decode may take: a 128 Ki-character piece takes ~0.3 s. */
export const TOKENIZE_BUDGET_MS = 10_000;
/** Time parsing and building a tokenizer may take (a 250k-token vocabulary takes ~1 s). */
export const LOAD_BUDGET_MS = 60_000;
/** The thread's heap: a tokenizer.json is at most 256 MiB; pieces are bounded. */
const HEAP_MB = 2048;

const WORKER_SOURCE = `
'use strict';
// Bundlers that keep function names (esbuild's keepNames, as tsx runs) wrap them in __name().
var __name = (f) => f;
const { parentPort, workerData } = require('node:worker_threads');
const library = { exports: {} };
new Function('module', 'exports', 'require', workerData.library)(library, library.exports, require);
const { Tokenizer } = library.exports;
const summarize = ${summarizeTokenizerJson.toString()};
const jsonDepth = ${jsonDepth.toString()};
const text = (e) => (e instanceof Error ? e.message : String(e));
let json = null;
let tokenizer = null;
const handlers = {
  parse(m) {
    const depth = jsonDepth(m.text);
    if (depth > m.maxDepth) return { error: 'JSON nested ' + depth + ' levels deep (at most ' + m.maxDepth + ')' };
    try {
      json = JSON.parse(m.text);
    } catch (e) {
      return { error: 'not valid JSON (' + text(e).replace(/\\s+/g, ' ').slice(0, 200) + ')' };
    }
    return { summary: summarize(json) };
  },
  build(m) {
    const added = Array.isArray(json.added_tokens) ? json.added_tokens : [];
    // The library requires these keys to exist (null is fine) and reads added_tokens unguarded.
    const full = Object.assign({ normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null }, json, { added_tokens: added });
    json = null;
    try {
      tokenizer = new Tokenizer(full, m.config);
    } catch (e) {
      return { buildError: text(e) };
    }
    return { ids: m.tokens.map((t) => { const id = tokenizer.token_to_id(t); return id === undefined ? null : id; }) };
  },
  encode(m) {
    const raw = tokenizer.encode(m.text, { add_special_tokens: false }).ids;
    // An unknown piece with no unk token comes back undefined; dropped as the Rust crate does.
    const ids = new Int32Array(raw.length);
    let n = 0;
    for (const id of raw) if (id !== undefined) ids[n++] = id;
    return { ids: n === ids.length ? ids : ids.slice(0, n) };
  },
  decode(m) {
    const known = m.ids.filter((id) => id < m.vocabSize && tokenizer.id_to_token(id) !== undefined);
    // The library throws on an empty list.
    return { text: known.length === 0 ? '' : tokenizer.decode(known, m.options) };
  },
};
parentPort.on('message', (m) => {
  let reply;
  try {
    reply = handlers[m.op](m);
  } catch (e) {
    reply = { failed: text(e) };
  }
  parentPort.postMessage(Object.assign({ id: m.id }, reply), reply && reply.ids instanceof Int32Array ? [reply.ids.buffer] : []);
});
`;

let librarySource: string | null = null;

/** The library's CommonJS build, as text. */
function library(): string {
  if (librarySource === null) {
    const require = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
    librarySource = readFileSync(require.resolve('@huggingface/tokenizers'), 'utf8');
  }
  return librarySource;
}

interface Reply {
  id: number;
  error?: string;
  failed?: string;
  buildError?: string;
  summary?: TokenizerSummary;
  ids?: Int32Array | Array<number | null>;
  text?: string;
}

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: unknown) => void;
  done: () => void;
}

export interface CallOptions {
  budgetMs: number;
  signal?: AbortSignal;
  /** What the call does, for the budget's message: "tokenizing a piece of 65,536 characters". */
  what: string;
}

/** Threads kept after their tokenizer was disposed, for the next one (starting one costs ~50–150 ms). */
const idle: TokenizerThread[] = [];
const MAX_IDLE = 2;
/** An idle thread ends after this long unused. */
const IDLE_MS = 15_000;

/**
 * One tokenizer's thread. Calls run one after another; the first failure (the budget, a
 * cancel, a crash) ends the thread. `open` reuses an idle one when there is one.
 */
export class TokenizerThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Why the thread ended (every later call rejects with it). */
  private ended: unknown = null;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;

  static open(path: string): TokenizerThread {
    const reused = idle.pop();
    if (reused) {
      if (reused.idleTimer) clearTimeout(reused.idleTimer);
      reused.idleTimer = null;
      reused.path = path;
      return reused;
    }
    return new TokenizerThread(path);
  }

  private constructor(private path: string) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { library: library() }, resourceLimits: { maxOldGenerationSizeMb: HEAP_MB } });
    this.worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) this.worker.unref();
      p.done();
      if (r.failed !== undefined) p.reject(new UserError(`${this.path}: the tokenizer fails on its own pipeline (${r.failed}); is the file damaged?`));
      else p.resolve(r);
    });
    this.worker.on('error', (e) => this.end(new UserError(`${this.path}: the tokenizer's thread failed (${e.message})`)));
    this.worker.on('exit', () => this.end(new UserError(`${this.path}: the tokenizer's thread ended`)));
    // Idle, never what keeps a process alive (after the listeners: adding one refs it again);
    // while a call is pending it must (the caller may be waiting on nothing else).
    this.worker.unref();
  }

  /** Sends one request; rejects on the budget (UserError), an abort (CancelledError) or a failure. */
  call(message: Record<string, unknown>, o: CallOptions): Promise<Reply> {
    if (this.ended !== null) return Promise.reject(this.ended);
    if (o.signal?.aborted) return Promise.reject(new CancelledError());
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        const seconds = o.budgetMs / 1000;
        this.end(
          new UserError(
            `${this.path}: ${o.what} took more than ${seconds} s, so it was stopped: the tokenizer's regular expressions ` +
              'backtrack without end on this text (a broken or hostile tokenizer.json)',
          ),
        );
      }, o.budgetMs);
      timer.unref();
      const onAbort = () => this.end(new CancelledError());
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
      };
      this.pending.set(id, { resolve, reject, done });
      this.worker.ref();
      this.worker.postMessage({ ...message, id });
    });
  }

  /** The tokenizer is done with the thread: kept for the next one when it is healthy and idle, else ended. */
  release(): void {
    if (this.ended !== null) return;
    if (this.pending.size > 0 || idle.length >= MAX_IDLE) {
      this.end();
      return;
    }
    this.path = '(idle)';
    idle.push(this);
    this.idleTimer = setTimeout(() => {
      idle.splice(idle.indexOf(this), 1);
      this.end();
    }, IDLE_MS);
    this.idleTimer.unref();
  }

  /** Ends the thread (at once, even mid-call) and rejects what is pending with `why`. */
  end(why: unknown = new UserError(`${this.path}: the tokenizer was closed`)): void {
    if (this.ended !== null) return;
    this.ended = why;
    void this.worker.terminate();
    for (const p of this.pending.values()) {
      p.done();
      p.reject(why);
    }
    this.pending.clear();
  }

  get alive(): boolean {
    return this.ended === null;
  }
}
