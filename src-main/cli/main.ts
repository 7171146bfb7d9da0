// The `loftq` command: parses arguments, runs one engine job, and maps failures to exit
// codes (0 ok, 1 user error with one line on stderr, 2 usage, 130 cancelled).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CancelledError, escapeControl, UserError } from '../engine/errors';
import { abandonAll } from '../engine/jobs/abandon';
import { checkDeviceChoice } from '../engine/tensor/devices';
import { quantChoice, QUANTIZE_DEFAULTS, validateQuantizeOptions, type QuantizeOptions } from '../engine/jobs/quantize-options';
import { planFromProfile } from '../engine/plan/budget-plan';
import { demoCommand } from './commands/demo';
import { evalCommand } from './commands/eval';
import { exportCommand } from './commands/export';
import { inspectCommand } from './commands/inspect';
import { profileCommand } from './commands/profile';
import { quantizeCommand } from './commands/quantize';
import { Output } from './output';
import { serveCommand } from './commands/serve';
import { trainCommand } from './commands/train';
import { COMMAND_NAMES, commandHelp, globalHelp, type CommandName } from './usage';
import { VERSION } from './version';


/** A command line that does not parse: one line, with a pointer to the command's --help. */
class UsageError extends Error {}

/**
 * node:util's parseArgs messages span lines ("… is ambiguous.\nDid you forget …"): one line in
 * our words instead, e.g. for --rank -3 (a value that looks like an option).
 */
function parseArgsMessage(e: Error): string {
  const ambiguous = /Option '(--[\w-]+)[^']*' argument is ambiguous/.exec(e.message);
  if (ambiguous) return `${ambiguous[1]} needs a value; to give one that starts with '-', write ${ambiguous[1]}=-3`;
  const missing = /Option '(--[\w-]+)[^']*' argument missing/.exec(e.message);
  if (missing) return `${missing[1]} needs a value`;
  const unknown = /Unknown option '([^']+)'/.exec(e.message);
  if (unknown) return `unknown option ${unknown[1]}`;
  return e.message.split('\n')[0].trim();
}

const COMMON = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

type Values = Record<string, string | boolean | undefined>;

function parse(command: CommandName, argv: string[], options: NonNullable<ParseArgsConfig['options']>, positionals: number): { values: Values; positionals: string[] } {
  // --help wins over anything else on the line, even what would not parse.
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(commandHelp(command));
    process.exit(0);
  }
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(parseArgsMessage(e as Error));
  }
  if (parsed.positionals.length !== positionals) {
    const given = parsed.positionals.length;
    throw new UsageError(positionals === 0 ? `${command} takes no arguments, got ${given}` : `${command} takes ${positionals} argument${positionals > 1 ? 's' : ''}, got ${given}`);
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

async function quantizeOptions(argv: string[], out: Output): Promise<QuantizeOptions> {
  const { values: v, positionals } = parse(
    'quantize',
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
      budget: { type: 'string' },
      profile: { type: 'string' },
      scaling: { type: 'string' },
      force: { type: 'boolean' },
    },
    1,
  );
  const outDir = str(v.out);
  if (!outDir) throw new UsageError('quantize needs --out RUN_DIR');
  const d = QUANTIZE_DEFAULTS;
  const autoRank = v.rank === 'auto';
  const budget = v.budget === undefined ? undefined : num('budget', v.budget, 0);
  if (budget === undefined && (v.profile !== undefined || v.scaling !== undefined || autoRank)) throw new UsageError('--profile, --scaling and --rank auto plan a run for a --budget: give --budget BITS too');
  if (budget !== undefined) {
    if (v.profile === undefined) throw new UsageError('--budget needs --profile FILE (written by loftq profile)');
    if (v.bits !== undefined || v['bits-map'] !== undefined) throw new UsageError('--budget chooses the bits: leave out --bits and --bits-map');
    if (autoRank && v.alpha !== undefined) throw new UsageError('with --rank auto the alpha follows the chosen rank (alpha = r): leave out --alpha, or keep s = alpha/r fixed with --scaling S');
    if (!autoRank && v.scaling !== undefined) throw new UsageError('--scaling goes with --rank auto (with a given rank, set --alpha)');
  }
  const rank = autoRank ? d.rank : num('rank', v.rank, d.rank);
  const options: QuantizeOptions = {
    model: positionals[0],
    out: outDir,
    method: (str(v.method) ?? d.method) as QuantizeOptions['method'],
    ...quantChoice(str(v.quant), v.bits === undefined ? undefined : num('bits', v.bits, d.bits), v.block === undefined ? undefined : num('block', v.block, d.block)),
    bitsMap: str(v['bits-map']),
    rank,
    // PEFT's convention: alpha defaults to r when not given, so s = 1.
    alpha: num('alpha', v.alpha, v.rank === undefined || autoRank ? d.alpha : rank),
    rslora: v.rslora === true || d.rslora,
    iters: num('iters', v.iters, d.iters),
    svd: (str(v.svd) ?? d.svd) as QuantizeOptions['svd'],
    targets: str(v.targets) ?? d.targets,
    device: (str(v.device) ?? d.device) as QuantizeOptions['device'],
    seed: num('seed', v.seed, d.seed),
    force: v.force === true,
  };
  if (budget === undefined) return options;
  validateQuantizeOptions(options);
  const plan = await planFromProfile({
    model: options.model,
    profile: str(v.profile)!,
    budget,
    method: options.method,
    quant: options.quant,
    block: options.block,
    targets: options.targets,
    rank: autoRank ? 'auto' : options.rank,
    scaling: v.scaling === undefined ? undefined : num('scaling', v.scaling, 1),
  });
  out.note(plan.note);
  return { ...options, bits: plan.bits, bitsMap: plan.bitsMap, rank: plan.rank, alpha: plan.alpha ?? options.alpha };
}

function isCommand(name: string | undefined): name is CommandName {
  return (COMMAND_NAMES as readonly (string | undefined)[]).includes(name);
}

async function run(argv: string[], out: Output, signal: AbortSignal): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'inspect': {
      const { positionals } = parse('inspect', rest, {}, 1);
      await inspectCommand(positionals[0], out);
      break;
    }
    case 'quantize':
      await quantizeCommand(await quantizeOptions(rest, out), out, signal);
      break;
    case 'profile': {
      const { values: v, positionals } = parse(
        'profile',
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
      const { values, positionals } = parse('export', rest, { format: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' } }, 1);
      const format = str(values.format);
      const outDir = str(values.out);
      if (!format || !outDir) throw new UsageError('export needs --format peft|gguf|merged and --out DIR');
      await exportCommand(positionals[0], format, outDir, values.force === true, out, signal);
      break;
    }
    case 'demo': {
      const { values } = parse('demo', rest, { runs: { type: 'string' } }, 0);
      await demoCommand(str(values.runs) ?? 'runs', out, signal);
      break;
    }
    case 'eval': {
      const { values, positionals } = parse(
        'eval',
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
      const { values } = parse('serve', rest, { port: { type: 'string' }, 'new-token': { type: 'boolean' }, host: { type: 'string' }, runs: { type: 'string' } }, 0);
      await serveCommand(
        { port: values.port === undefined ? undefined : num('port', values.port, 0), newToken: values['new-token'] === true, host: str(values.host) ?? '127.0.0.1', runs: str(values.runs) ?? 'runs' },
        signal,
      );
      break;
    }
    case 'train': {
      const ints = ['steps', 'batch', 'seq-len', 'eval-every', 'warmup', 'accum', 'checkpoint-every', 'seed'] as const;
      const { values, positionals } = parse(
        'train',
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
      // `loftq help quantize` is `loftq quantize --help`.
      process.stdout.write(command === 'help' && isCommand(rest[0]) ? commandHelp(rest[0]) : globalHelp());
      if (command === undefined) process.exitCode = 2;
      break;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
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
  const out = new Output(json);
  try {
    await run(argv, out, controller.signal);
    return Number(process.exitCode ?? 0);
  } catch (e) {
    out.finish(); // ends a progress bar's line, so the error starts on its own (and no blank line otherwise)
    const report = (code: number, raw: string) => {
      const message = errorLine(raw);
      process.stderr.write(`loftq: ${message}\n`);
      if (json) process.stdout.write(JSON.stringify({ type: 'error', code, message }) + '\n');
      return code;
    };
    if (e instanceof UsageError) {
      const command = argv[0];
      return report(2, `${e.message} (${isCommand(command) ? `loftq ${command} --help` : 'loftq --help'} lists the options)`);
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

