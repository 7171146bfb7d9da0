// The fuzz and fault suite of issue 23's review, in CI: generated hostile models (shapes,
// dtypes, configs), hostile datasets and hostile tokenizers go through the engine's commands,
// and real processes are cut by a full disk (a file-size limit) or SIGKILL. Every case must end
// in success or one clear line (a UserError), never an internal error, a hang, or memory beyond
// what was asked; what a crash leaves behind must be repaired or removed by the next command.
// Each section prints its case counts.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../engine/errors';
import { runEval } from '../engine/jobs/eval-job';
import { inspectModel } from '../engine/jobs/inspect';
import { planQuantize } from '../engine/jobs/quantize-job';
import { QUANTIZE_DEFAULTS } from '../engine/jobs/quantize-options';
import { openTextDataset, readTokens } from '../engine/text/datasets';
import { loadTokenizer, type TextTokenizer } from '../engine/text/tokenizer';
import { CLI, loftq } from '../test-support/cli';
import { loftqMeasured, loftqWithFileLimit } from '../test-support/faults';
import { makeTempDir, writeTinyModel, type TinyModelOptions } from '../test-support/tiny-model';
import { byteLevelBpe, HOSTILE_TEXT, hostileSplitBpe, sentencePieceBpe, writeTokenizer } from '../test-support/tokenizer-fixtures';

let tmp: string;
let model: string;
let words: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-hostile-');
  model = join(tmp, 'model');
  await writeTinyModel(model, BASE);
  await writeTokenizer(model, byteLevelBpe());
  words = join(tmp, 'words.txt');
  writeFileSync(words, 'hello world, the quick brown fox. '.repeat(40));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const BASE: TinyModelOptions = { layers: 2, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 272 };

type Outcome = 'ok' | 'refused';

/** Runs `work` and classifies it: success, or a one-line UserError; anything else fails the test. */
async function outcome(what: string, work: () => Promise<unknown>, timeoutMs = 20_000): Promise<Outcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs)));
  try {
    await Promise.race([work(), hang]);
    return 'ok';
  } catch (e) {
    if (!(e instanceof UserError)) throw new Error(`${what}: internal error: ${(e as Error)?.stack ?? String(e)}`);
    expect(e.message, what).not.toMatch(/\n/);
    return 'refused';
  } finally {
    clearTimeout(timer);
  }
}

function tally(label: string, outcomes: Outcome[]): void {
  const refused = outcomes.filter((o) => o === 'refused').length;
  console.log(`${label}: ${outcomes.length} cases, ${refused} refused in one line, ${outcomes.length - refused} accepted, 0 internal errors, 0 hangs`);
}

describe('hostile models: inspect, quantize and eval check every tensor against config.json', () => {
  const L0 = 'model.layers.0';
  const shapes: Record<string, number[]> = {
    'model.embed_tokens.weight': [272, 16],
    'lm_head.weight': [272, 16],
    'model.norm.weight': [16],
    [`${L0}.input_layernorm.weight`]: [16],
    'model.layers.1.post_attention_layernorm.weight': [16],
    [`${L0}.self_attn.q_proj.weight`]: [16, 16],
    [`${L0}.self_attn.k_proj.weight`]: [8, 16],
    [`${L0}.self_attn.v_proj.weight`]: [8, 16],
    [`${L0}.self_attn.o_proj.weight`]: [16, 16],
    [`${L0}.mlp.gate_proj.weight`]: [24, 16],
    [`${L0}.mlp.up_proj.weight`]: [24, 16],
    'model.layers.1.mlp.down_proj.weight': [16, 24],
  };
  const cases: Array<[string, TinyModelOptions, boolean]> = [];
  for (const [name, shape] of Object.entries(shapes)) {
    const [a, b] = shape;
    if (b !== undefined) cases.push([`${name} transposed`, { shapeOverrides: { [name]: [b, a] } }, a !== b]);
    cases.push([`${name} one row more`, { shapeOverrides: { [name]: [a + 1, ...shape.slice(1)] } }, true]);
    cases.push([`${name} with an extra dimension`, { shapeOverrides: { [name]: [...shape, 1] } }, true]);
    if (b !== undefined) cases.push([`${name} flattened`, { shapeOverrides: { [name]: [a * b] } }, true]);
    if (name !== 'lm_head.weight') cases.push([`${name} missing`, { shapeOverrides: { [name]: null } }, true]);
    cases.push([`${name} stored as I32`, { dtypeOverrides: { [name]: 'I32' } }, true]);
    cases.push([`${name} stored as U8`, { dtypeOverrides: { [name]: 'U8' } }, true]);
  }
  cases.push(['a norm of shape [2, 8] (the review)', { shapeOverrides: { [`${L0}.input_layernorm.weight`]: [2, 8] } }, true]);
  cases.push(['a q_proj bias of the wrong size', { shapeOverrides: { [`${L0}.self_attn.q_proj.bias`]: [3] } }, true]);
  cases.push(['a layer more in the weights than in the config', { configOverrides: { num_hidden_layers: 1 } }, true]);
  const config: Array<[string, Record<string, unknown>, boolean]> = [
    ['head_dim 33 (the review)', { head_dim: 33 }, true],
    ['head_dim 1e9 (the review)', { head_dim: 1e9 }, true],
    ['head_dim 0', { head_dim: 0 }, true],
    ['head_dim "4"', { head_dim: '4' }, true],
    ['head_dim 8 (weights say 4)', { head_dim: 8 }, true],
    ['hidden_size not divisible by the heads', { hidden_size: 18 }, true],
    ['num_key_value_heads 3', { num_key_value_heads: 3 }, true],
    ['num_attention_heads 0', { num_attention_heads: 0 }, true],
    ['vocab_size 100', { vocab_size: 100 }, true],
    ['vocab_size 1e12', { vocab_size: 1e12 }, true],
    ['num_hidden_layers 1e9', { num_hidden_layers: 1e9 }, true],
    ['intermediate_size -24', { intermediate_size: -24 }, true],
    ['max_position_embeddings 0', { max_position_embeddings: 0 }, true],
    ['rope_theta "big"', { rope_theta: 'big' }, true],
    ['rms_norm_eps NaN-like', { rms_norm_eps: -1 }, true],
    ['torch_dtype int8', { torch_dtype: 'int8' }, true],
    ['model_type gpt2', { model_type: 'gpt2' }, true],
    ['tie_word_embeddings "yes"', { tie_word_embeddings: 'yes' }, true],
    ['attention_bias 1', { attention_bias: 1 }, true],
    ['rope_scaling yarn', { rope_scaling: { rope_type: 'yarn', factor: 4 } }, false],
    ['rope_scaling a string', { rope_scaling: 'linear' }, false],
    ['max_position_embeddings 1e15', { max_position_embeddings: 1e15 }, false],
  ];
  for (const [what, overrides, refuse] of config) cases.push([`config.json: ${what}`, { configOverrides: overrides }, refuse]);

  it(`refuses each of ${cases.length} hostile models in one line (or runs it), never an internal error`, async () => {
    const outcomes: Outcome[] = [];
    for (const [i, [what, o, mustRefuse]] of cases.entries()) {
      const dir = join(tmp, `hostile-model-${i}`);
      await writeTinyModel(dir, { ...BASE, ...o });
      await writeTokenizer(dir, byteLevelBpe());
      const results = [
        await outcome(`${what}: inspect`, () => inspectModel(dir)),
        await outcome(`${what}: quantize`, () => planQuantize({ ...QUANTIZE_DEFAULTS, model: dir, out: join(tmp, 'never-written'), rank: 2, force: false })),
        await outcome(`${what}: eval`, () => runEval({ target: dir, data: words, device: 'cpu', seqLen: 16, maxTokens: 200 })),
      ];
      if (mustRefuse) expect(results, what).toEqual(['refused', 'refused', 'refused']);
      outcomes.push(...results);
      await rm(dir, { recursive: true, force: true });
    }
    tally('hostile models (inspect, quantize, eval)', outcomes);
  }, 120_000);
});

describe('hostile datasets: read and tokenized in bounded pieces, or refused in one line', () => {
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer(model);
  });
  afterAll(() => tokenizer.dispose());

  it('each dataset gives tokens or one line', async () => {
    const dir = join(tmp, 'datasets');
    mkdirSync(dir);
    const files: Array<[string, string | Buffer, { field?: string }?]> = [
      ['empty.txt', ''],
      ['spaces.txt', ' \n\t\r\n  '],
      ['bom-only.txt', '\uFEFF'],
      ['nul-bytes.txt', Buffer.alloc(5000)],
      ['invalid-utf8.txt', Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0x68, 0x69])],
      ['binary.txt', Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 256))],
      ['crlf.txt', 'hello\r\nworld\r\n'.repeat(100)],
      ['one-long-word.txt', 'x'.repeat(300_000)],
      ['hostile-text.txt', HOSTILE_TEXT],
      ['not-json.jsonl', 'hello world\n'],
      ['array.jsonl', '["text"]\n'],
      ['number.jsonl', '42\n'],
      ['string.jsonl', '"text"\n'],
      ['deep.jsonl', `{"a":${'['.repeat(100_000)}\n`],
      ['no-field.jsonl', '{"body": "x"}\n'],
      ['field-number.jsonl', '{"text": 5}\n'],
      ['field-object.jsonl', '{"text": {"a": 1}}\n'],
      ['field-twice.jsonl', '{"text": "a", "text": "b"}\n'],
      ['field-null.jsonl', '{"text": null}\n{"text": "hello"}\n'],
      ['bad-escape.jsonl', '{"text": "a\\x"}\n'],
      ['lone-surrogates.jsonl', '{"text": "\\ud800 and \\udfff"}\n'],
      ['control-char.jsonl', '{"text": "a\u0001b"}\n'],
      ['unterminated.jsonl', '{"text": "never ends'],
      ['trailing-garbage.jsonl', '{"text": "a"} x\n'],
      ['blank-lines.jsonl', '\n\n   \n\t\n'],
      ['long-key.jsonl', `{"${'k'.repeat(200_000)}": 1, "text": "hello"}\n`],
      ['huge-number.jsonl', `{"n": ${'9'.repeat(100_000)}, "text": "hello"}\n`],
      ['other-field.jsonl', '{"body": "hello world"}\n', { field: 'body' }],
      ['not-parquet.parquet', 'PAR1 definitely not parquet PAR1'],
      ['truncated.parquet', 'PAR1'],
    ];
    const outcomes: Outcome[] = [];
    const read = (path: string, field?: string) => readTokens(openTextDataset(path, { field }), tokenizer, { separator: 'eos', maxTokens: 20_000 });
    for (const [name, content, o] of files) {
      const path = join(dir, name);
      writeFileSync(path, content);
      outcomes.push(await outcome(name, () => read(path, o?.field), 10_000));
    }
    const parquet = join(dir, 'numbers.parquet');
    parquetWriteFile({ filename: parquet, columnData: [{ name: 'text', data: [1, 2, 3], type: 'INT32' }] });
    outcomes.push(await outcome('a numeric parquet column', () => read(parquet)));
    const emptyParquet = join(dir, 'no-rows.parquet');
    parquetWriteFile({ filename: emptyParquet, columnData: [{ name: 'text', data: [], type: 'STRING' }] });
    outcomes.push(await outcome('a parquet file without rows', () => read(emptyParquet)));
    mkdirSync(join(dir, 'folder.txt'));
    outcomes.push(await outcome('a folder', () => read(join(dir, 'folder.txt'))));
    symlinkSync(join(dir, 'loop-b.txt'), join(dir, 'loop-a.txt'));
    symlinkSync(join(dir, 'loop-a.txt'), join(dir, 'loop-b.txt'));
    outcomes.push(await outcome('a symlink loop', () => read(join(dir, 'loop-a.txt'))));
    if (spawnSync('mkfifo', [join(dir, 'fifo.jsonl')]).status === 0) outcomes.push(await outcome('a named pipe', () => read(join(dir, 'fifo.jsonl')), 5000));
    outcomes.push(await outcome('a missing file', () => read(join(dir, 'missing.txt'))));
    expect(outcomes.filter((o) => o === 'refused').length).toBeGreaterThan(outcomes.length / 2);
    tally('hostile datasets', outcomes);
  }, 60_000);
});

describe('hostile tokenizers: refused or run within a time budget, never a hang', () => {
  const base = byteLevelBpe();
  const split = (regex: string) => ({ ...base, pre_tokenizer: { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false } });
  const tokenizers: Array<[string, Record<string, unknown>]> = [
    ['the review: (\\w+\\s?)*$', hostileSplitBpe()],
    ['polynomial backtracking (.*o){12}z', split('(.*o){12}z')],
    ['catastrophic with a lookahead', split('(\\w+\\s?)+(?=\\d)')],
    ['a catastrophic Replace normalizer', { ...base, normalizer: { type: 'Replace', pattern: { Regex: '(\\w+\\s?)*$' }, content: '' } }],
    ['an invalid regex', split('(unclosed')],
    ['an empty regex', split('')],
    ['a pre-tokenizer nested 300 deep', { ...base, pre_tokenizer: JSON.parse('{"type":"Sequence","pretokenizers":['.repeat(300) + '{"type":"ByteLevel"}' + ']}'.repeat(300)) }],
    ['an unknown pre-tokenizer', { ...base, pre_tokenizer: { type: 'Mystery' } }],
    ['an unknown normalizer', { ...base, normalizer: { type: 'Mystery' } }],
    ['an unknown decoder', { ...base, decoder: { type: 'Mystery' } }],
    ['a WordPiece model', { ...base, model: { type: 'WordPiece', vocab: { a: 0 } } }],
    ['a model without type', { ...base, model: { vocab: {}, merges: [] } }],
    ['vocab as a list', { ...base, model: { ...(base.model as object), vocab: ['a', 'b'] } }],
    ['merges as an object', { ...base, model: { ...(base.model as object), merges: { a: 'b' } } }],
    ['merges of numbers', { ...base, model: { ...(base.model as object), merges: [[1, 2], [3]] } }],
    ['negative and fractional ids', { ...base, model: { ...(base.model as object), vocab: { a: -1, b: 1.5, c: 1e300 } } }],
    ['an empty vocabulary', { ...base, model: { ...(base.model as object), vocab: {} } }],
    ['added tokens of odd types', { ...base, added_tokens: [{ id: 'x', content: 5 }, null, 7, { id: 300, content: '' }] }],
    ['added_tokens an object', { ...base, added_tokens: { a: 1 } }],
    ['a post-processor template of numbers', { ...base, post_processor: { type: 'TemplateProcessing', single: [1, 2] } }],
    ['a SentencePiece BPE', sentencePieceBpe()],
  ];
  const configs: Array<[string, Record<string, unknown>]> = [
    ['bos_token not in the vocabulary', { bos_token: '<nope>' }],
    ['add_bos_token a string', { add_bos_token: 'yes' }],
    ['bos_token an array', { bos_token: ['<s>'] }],
    ['model_max_length -5', { model_max_length: -5 }],
  ];

  it('each tokenizer.json or tokenizer_config.json gives a tokenizer or one line, within its budget', async () => {
    const outcomes: Outcome[] = [];
    const all: Array<[string, Record<string, unknown>, Record<string, unknown> | undefined]> = [...tokenizers.map(([w, t]) => [w, t, undefined] as [string, Record<string, unknown>, undefined]), ...configs.map(([w, c]) => [w, base, c] as [string, Record<string, unknown>, Record<string, unknown>])];
    for (const [i, [what, json, config]] of all.entries()) {
      const dir = join(tmp, `tokenizer-${i}`);
      mkdirSync(dir);
      await writeTokenizer(dir, json, config);
      const started = performance.now();
      outcomes.push(
        await outcome(what, async () => {
          const t = await loadTokenizer(dir, { budgetMs: 300 });
          try {
            await t.encode(`${HOSTILE_TEXT} hello world 2024 é`);
          } finally {
            t.dispose();
          }
        }),
      );
      // Load, probe and one piece: each call stops at its budget.
      expect(performance.now() - started, what).toBeLessThan(5000);
    }
    expect(outcomes.slice(0, 4)).toEqual(['refused', 'refused', 'refused', 'refused']);
    tally('hostile tokenizers', outcomes);
  }, 60_000);
});

describe('faults: a full disk or a kill leaves nothing half-done that blocks or lingers', () => {
  let run: string;
  beforeAll(() => {
    run = join(tmp, 'run');
    const q = loftq('quantize', model, '--out', run, '--bits', '4', '--rank', '2', '--device', 'cpu');
    expect(q.code, q.stderr).toBe(0);
  });
  const lastLine = (r: { stderr: string }) => r.stderr.trim().split('\n').at(-1) ?? '';
  const faults: string[] = [];

  it('a run that cannot be created (disk full) leaves no marker, so --force works later', () => {
    const out = join(tmp, 'full-disk-run');
    const r = loftqWithFileLimit(0, 'quantize', model, '--out', out, '--bits', '4', '--rank', '2', '--device', 'cpu');
    expect(r.code).toBe(1);
    expect(lastLine(r)).toMatch(/^loftq: cannot write .*\.loftq-run: file too large/);
    expect(existsSync(join(out, '.loftq-run'))).toBe(false);
    const again = loftq('quantize', model, '--out', out, '--bits', '4', '--rank', '2', '--device', 'cpu', '--force');
    expect(again.code, again.stderr).toBe(0);
    faults.push('run creation on a full disk');
  });

  it('a metrics record cut by a full disk is taken back; the next records are whole', () => {
    const metrics = join(run, 'metrics.jsonl');
    // 1000 bytes of earlier records: the next one crosses the 1 KiB limit part-way.
    writeFileSync(metrics, JSON.stringify({ note: 'x'.repeat(985) }) + '\n');
    const before = readFileSync(metrics, 'utf8');
    const r = loftqWithFileLimit(1, 'eval', run, '--data', words, '--seq-len', '16', '--device', 'cpu');
    expect(r.code).toBe(1);
    expect(lastLine(r)).toMatch(/cannot write .*metrics\.jsonl: file too large/);
    expect(readFileSync(metrics, 'utf8')).toBe(before);
    // A tail torn where nothing could clean up (a kill mid-write) is repaired by the next write.
    writeFileSync(metrics, before + '{"step": 0, "split": "ev');
    const ok = loftq('eval', run, '--data', words, '--seq-len', '16', '--device', 'cpu');
    expect(ok.code, ok.stderr).toBe(0);
    const lines = readFileSync(metrics, 'utf8').trim().split('\n');
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(lines.map((l) => (JSON.parse(l) as { weights?: string }).weights)).toEqual([undefined, 'fp', 'q', 'q+lora']);
    faults.push('metrics append on a full disk', 'metrics tail torn by a kill');
  });

  it('an export killed mid-way leaves a staging folder that the next export beside it removes', async () => {
    const parent = join(tmp, 'exports');
    mkdirSync(parent);
    let left: string[] = [];
    for (let attempt = 0; attempt < 5 && left.length === 0; attempt++) {
      await new Promise<void>((done) => {
        const child = spawn(process.execPath, [CLI, 'export', run, '--format', 'merged', '--out', join(parent, 'merged'), '--force', '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
        child.stdout.once('data', () => child.kill('SIGKILL'));
        child.once('exit', () => done());
      });
      left = readdirSync(parent).filter((n) => n.startsWith('.merged.tmp-'));
    }
    expect(left.length).toBeGreaterThan(0);
    expect(statSync(join(parent, left[0])).isDirectory()).toBe(true);
    const next = loftq('export', run, '--format', 'peft', '--out', join(parent, 'peft'));
    expect(next.code, next.stderr).toBe(0);
    expect(readdirSync(parent).filter((n) => n.includes('.tmp-'))).toEqual([]);
    faults.push('export killed mid-way');
  });

  it('a live exporter’s staging folder is left alone', () => {
    const parent = join(tmp, 'exports-live');
    const live = join(parent, '.other.tmp-0badf00d');
    mkdirSync(live, { recursive: true });
    writeFileSync(join(live, '.loftq-staging'), JSON.stringify({ format: 'loftq-staging/1', pid: process.pid, host: hostname() }));
    const r = loftq('export', run, '--format', 'peft', '--out', join(parent, 'peft'));
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(live)).toBe(true);
    faults.push('staging of a live exporter');
  });

  it('a 40 MB .jsonl line stays far under 500 MB, and a 4 M-character text without spaces finishes fast', () => {
    const line = join(tmp, 'one-line.jsonl');
    const fd = openSync(line, 'w');
    writeSync(fd, '{"id": 1, "text": "');
    const chunk = 'hello world, the quick brown fox jumps. '.repeat(25_000); // 1 MB
    for (let i = 0; i < 40; i++) writeSync(fd, chunk);
    writeSync(fd, '"}\n');
    closeSync(fd);
    const r = loftqMeasured('eval', model, '--data', line, '--max-tokens', '2000', '--seq-len', '16', '--stride', '16', '--device', 'cpu');
    expect(r.code, r.stderr).toBe(0);
    // Another field of 40 MB before the text: scanned past, never held.
    const before = join(tmp, 'big-other-field.jsonl');
    const fd2 = openSync(before, 'w');
    writeSync(fd2, '{"meta": "');
    for (let i = 0; i < 40; i++) writeSync(fd2, chunk);
    writeSync(fd2, `", "text": "${'hello world '.repeat(200)}"}\n`);
    closeSync(fd2);
    const r2 = loftqMeasured('eval', model, '--data', before, '--seq-len', '16', '--stride', '16', '--device', 'cpu');
    expect(r2.code, r2.stderr).toBe(0);
    const spaceFree = join(tmp, 'space-free.txt');
    let s = '';
    for (let i = 0; s.length < 4_000_000; i++) s += String.fromCharCode(97 + ((i * 7919) % 26)).repeat(1 + (i % 4));
    writeFileSync(spaceFree, s.slice(0, 4_000_000));
    const r3 = loftqMeasured('eval', model, '--data', spaceFree, '--max-tokens', '1000', '--seq-len', '16', '--stride', '16', '--device', 'cpu');
    expect(r3.code, r3.stderr).toBe(0);
    for (const [what, m] of [['40 MB line, --max-tokens 2000', r], ['40 MB other field, then the text', r2], ['4 M characters without spaces, --max-tokens 1000', r3]] as const) {
      console.log(`eval of ${what}: ${m.seconds.toFixed(1)} s, peak RSS ${m.peakRssMiB.toFixed(0)} MiB`);
      expect(m.peakRssMiB, what).toBeLessThan(500);
      expect(m.seconds, what).toBeLessThan(20);
    }
    faults.push('40 MB record', '40 MB record before the field', '4 M characters without a space');
  }, 120_000);

  afterAll(() => console.log(`faults: ${faults.length} cases (${faults.join('; ')})`));
});
