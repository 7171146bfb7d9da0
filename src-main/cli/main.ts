// The `loftq` command: parses arguments, runs one engine job, and maps failures to exit
// codes (0 ok, 1 user error with one line on stderr, 2 usage, 130 cancelled).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CancelledError, escapeControl, UserError } from '../engine/errors';
import { abandonAll } from '../engine/jobs/abandon';
import { checkDeviceChoice } from '../engine/tensor/devices';
import { quantChoice, QUANTIZE_DEFAULTS, type QuantizeOptions } from '../engine/jobs/quantize-options';
import { demoCommand } from './commands/demo';
import { evalCommand } from './commands/eval';
import { exportCommand } from './commands/export';
import { inspectCommand } from './commands/inspect';
import { profileCommand } from './commands/profile';
import { quantizeCommand } from './commands/quantize';
import { Output } from './output';
import { serveCommand } from './commands/serve';
import { trainCommand } from './commands/train';
import { VERSION } from './version';


const USAGE = `usage: loftq <command> [options]

  inspect MODEL_DIR [--json]
  quantize MODEL_DIR --out RUN_DIR [--method loftq|qlora] [--bits 4|3|2|8] [--bits-map SPEC]
           [--quant nf|uniform|q4_0|q8_0] [--block 64] [--rank 16] [--alpha 16] [--rslora] [--iters 5]
           [--svd randomized|exact] [--targets all-linear|q_proj,v_proj,...]
           [--device auto|cpu|cuda] [--seed N] [--force] [--json]
  eval MODEL_OR_RUN_DIR --data FILE [--field NAME] [--seq-len N] [--stride N] [--max-tokens N]
       [--device auto|cpu|cuda] [--precision bf16|fp32] [--batch N] [--json]
  train RUN_DIR --data FILE [--field NAME] [--eval-data FILE] [--steps N] [--lr X] [--batch N]
        [--seq-len N] [--eval-every N] [--warmup N] [--accum N] [--checkpoint-every N] [--seed N]
        [--device auto|cpu|cuda] [--precision bf16|fp32] [--json]
  export RUN_DIR --format peft|gguf|merged --out DIR [--force] [--json]
  profile MODEL_DIR --out FILE [--quant nf|uniform|q4_0|q8_0] [--block 64] [--max-rank 64]
          [--targets ...] [--device auto|cpu|cuda] [--force] [--json]
  serve [--port N] [--host 127.0.0.1] [--runs DIR]
  demo [--runs DIR] [--json]

--bits-map SPEC: comma-separated SELECTOR=BITS rules over --bits, later rules win;
  selectors: first:K, layers:A-B, attn, mlp, q_proj..down_proj, a module path; join with /.
  e.g. --bits 2 --bits-map first:4=4   (the LoftQ paper's mixed precision)
--quant q4_0|q8_0: llama.cpp's formats (block 32); --quant ggml with --bits-map mixes them.
`;

class UsageError extends Error {}

const COMMON = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

type Values = Record<string, string | boolean | undefined>;

function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>, positionals: number): { values: Values; positionals: string[] } {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (parsed.values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (parsed.positionals.length !== positionals) {
    throw new UsageError(`expected ${positionals} argument(s), got ${parsed.positionals.length}`);
  }
  return parsed;
}

function str(v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} needs a number, got '${String(v)}'`);
  return n;
}

function quantizeOptions(argv: string[]): QuantizeOptions {
  const { values: v, positionals } = parse(
    argv,
    {
      out: { type: 'string' },
      method: { type: 'string' },
      bits: { type: 'string' },
      'bits-map': { type: 'string' },
      quant: { type: 'string' },
      block: { type: 'string' },
      rank: { type: 'string' },
      alpha: { type: 'string' },
      rslora: { type: 'boolean' },
      iters: { type: 'string' },
      svd: { type: 'string' },
      targets: { type: 'string' },
      device: { type: 'string' },
      seed: { type: 'string' },
      force: { type: 'boolean' },
    },
    1,
  );
  const outDir = str(v.out);
  if (!outDir) throw new UsageError('quantize needs --out RUN_DIR');
  const d = QUANTIZE_DEFAULTS;
  const rank = num('rank', v.rank, d.rank);
  return {
    model: positionals[0],
    out: outDir,
    method: (str(v.method) ?? d.method) as QuantizeOptions['method'],
    ...quantChoice(str(v.quant), v.bits === undefined ? undefined : num('bits', v.bits, d.bits), v.block === undefined ? undefined : num('block', v.block, d.block)),
    bitsMap: str(v['bits-map']),
    rank,
    // PEFT's convention: alpha defaults to r when not given, so s = 1.
    alpha: num('alpha', v.alpha, v.rank === undefined ? d.alpha : rank),
    rslora: v.rslora === true || d.rslora,
    iters: num('iters', v.iters, d.iters),
    svd: (str(v.svd) ?? d.svd) as QuantizeOptions['svd'],
    targets: str(v.targets) ?? d.targets,
    device: (str(v.device) ?? d.device) as QuantizeOptions['device'],
    seed: num('seed', v.seed, d.seed),
    force: v.force === true,
  };
}

async function run(argv: string[], signal: AbortSignal): Promise<Output> {
  const [command, ...rest] = argv;
  const json = rest.includes('--json');
  const out = new Output(json);
  switch (command) {
    case 'inspect': {
      const { positionals } = parse(rest, {}, 1);
      await inspectCommand(positionals[0], out);
      break;
    }
    case 'quantize':
      await quantizeCommand(quantizeOptions(rest), out, signal);
      break;
    case 'profile': {
      const { values: v, positionals } = parse(
        rest,
        { out: { type: 'string' }, quant: { type: 'string' }, block: { type: 'string' }, 'max-rank': { type: 'string' }, targets: { type: 'string' }, device: { type: 'string' }, seed: { type: 'string' }, force: { type: 'boolean' } },
        1,
      );
      const outFile = str(v.out);
      if (!outFile) throw new UsageError('profile needs --out FILE (the profile, JSON)');
      const name = str(v.quant);
      const choice = quantChoice(name, undefined, v.block === undefined ? undefined : num('block', v.block, QUANTIZE_DEFAULTS.block));
      await profileCommand(
        {
          model: positionals[0],
          quant: choice.quant,
          block: choice.block,
          maxRank: num('max-rank', v['max-rank'], 64),
          targets: str(v.targets),
          bits: name === 'q4_0' || name === 'q8_0' ? [choice.bits] : undefined,
          device: checkDeviceChoice(str(v.device) ?? 'auto'),
          seed: num('seed', v.seed, 0),
        },
        outFile,
        v.force === true,
        out,
        signal,
      );
      break;
    }
    case 'export': {
      const { values, positionals } = parse(rest, { format: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' } }, 1);
      const format = str(values.format);
      const outDir = str(values.out);
      if (!format || !outDir) throw new UsageError('export needs --format peft|gguf|merged and --out DIR');
      await exportCommand(positionals[0], format, outDir, values.force === true, out, signal);
      break;
    }
    case 'demo': {
      const { values } = parse(rest, { runs: { type: 'string' } }, 0);
      await demoCommand(str(values.runs) ?? 'runs', out, signal);
      break;
    }
    case 'eval': {
      const { values, positionals } = parse(
        rest,
        {
          data: { type: 'string' },
          field: { type: 'string' },
          'seq-len': { type: 'string' },
          stride: { type: 'string' },
          'max-tokens': { type: 'string' },
          device: { type: 'string' },
          precision: { type: 'string' },
          batch: { type: 'string' },
        },
        1,
      );
      const data = str(values.data);
      if (!data) throw new UsageError('eval needs --data FILE (.txt, .jsonl or .parquet)');
      const opt = (name: string) => (values[name] === undefined ? undefined : num(name, values[name], 0));
      const precision = str(values.precision);
      if (precision !== undefined && precision !== 'bf16' && precision !== 'fp32') throw new UsageError(`--precision must be bf16 or fp32, got '${precision}'`);
      await evalCommand(
        {
          target: positionals[0],
          data,
          field: str(values.field),
          seqLen: opt('seq-len'),
          stride: opt('stride'),
          maxTokens: opt('max-tokens'),
          device: checkDeviceChoice(str(values.device) ?? 'auto'),
          precision,
          batch: opt('batch'),
        },
        out,
        signal,
      );
      break;
    }
    case 'serve': {
      const { values } = parse(rest, { port: { type: 'string' }, host: { type: 'string' }, runs: { type: 'string' } }, 0);
      await serveCommand({ port: num('port', values.port, 0), host: str(values.host) ?? '127.0.0.1', runs: str(values.runs) ?? 'runs' }, signal);
      break;
    }
    case 'train': {
      const ints = ['steps', 'batch', 'seq-len', 'eval-every', 'warmup', 'accum', 'checkpoint-every', 'seed'] as const;
      const { values, positionals } = parse(
        rest,
        {
          data: { type: 'string' },
          field: { type: 'string' },
          'eval-data': { type: 'string' },
          lr: { type: 'string' },
          device: { type: 'string' },
          precision: { type: 'string' },
          ...Object.fromEntries(ints.map((k) => [k, { type: 'string' }])),
        },
        1,
      );
      const data = str(values.data);
      if (!data) throw new UsageError('train needs --data FILE (.txt, .jsonl or .parquet)');
      const precision = str(values.precision);
      if (precision !== undefined && precision !== 'bf16' && precision !== 'fp32') throw new UsageError(`--precision must be bf16 or fp32, got '${precision}'`);
      const opt = (name: string) => (values[name] === undefined ? undefined : num(name, values[name], 0));
      await trainCommand(
        {
          run: positionals[0],
          data,
          field: str(values.field),
          evalData: str(values['eval-data']),
          steps: opt('steps'),
          lr: opt('lr'),
          batch: opt('batch'),
          seqLen: opt('seq-len'),
          evalEvery: opt('eval-every'),
          warmup: opt('warmup'),
          accum: opt('accum'),
          checkpointEvery: opt('checkpoint-every'),
          seed: opt('seed'),
          device: checkDeviceChoice(str(values.device) ?? 'auto'),
          precision,
        },
        out,
        signal,
      );
      break;
    }
    case '--version':
    case 'version':
      process.stdout.write(`loftq ${VERSION}\n`);
      break;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      if (command === undefined) process.exitCode = 2;
      break;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
  return out;
}

/** Longest error line printed (the rest of a long message is cut with an ellipsis). */
const MAX_ERROR_CHARS = 600;

/**
 * One line, whatever the message holds: control characters from data (a newline in a file or
 * shard name) are escaped, so nothing can forge a second line, and the length is capped.
 */
export function errorLine(message: string): string {
  const escaped = escapeControl(message);
  return escaped.length > MAX_ERROR_CHARS ? `${escaped.slice(0, MAX_ERROR_CHARS - 1)}…` : escaped;
}

/** How long a cancelled job may take to wind down before the process leaves without it. */
const CANCEL_GRACE_MS = 1500;

export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let interrupts = 0;
  // No time to wait for the cancel: leave each run's state truthful, then go.
  const quit = () => {
    abandonAll();
    process.exit(130);
  };
  const onSignal = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write('\ncancelling… (press Ctrl-C again to quit at once)\n');
      controller.abort();
      // A job busy in something that cannot stop at once (a long GPU or ORT call) does not hold the user up.
      setTimeout(quit, CANCEL_GRACE_MS).unref();
    } else quit();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const json = argv.includes('--json');
  try {
    await run(argv, controller.signal);
    return Number(process.exitCode ?? 0);
  } catch (e) {
    process.stderr.write('\n');
    const report = (code: number, raw: string) => {
      const message = errorLine(raw);
      process.stderr.write(`loftq: ${message}\n`);
      if (json) process.stdout.write(JSON.stringify({ type: 'error', code, message }) + '\n');
      return code;
    };
    if (e instanceof UsageError) {
      process.stderr.write(USAGE);
      return report(2, e.message);
    }
    if (e instanceof CancelledError) return report(130, 'cancelled; the run is marked cancelled');
    if (e instanceof UserError) return report(1, e.message);
    process.stderr.write(`${(e as Error)?.stack ?? describe(e)}\n`);
    return report(1, `internal error: ${e instanceof Error ? e.message : describe(e)}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** A thrown value that is not an Error, as text (never "[object Object]"). */
function describe(e: unknown): string {
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}

