// Bad input gives one clear line (issue 12): no stack trace, no "internal error", no line
// forged by data, for the serve command's port and for names that carry control characters.
import { cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loftq } from '../test-support/cli';
import { makeTempDir, writeTinyModel } from '../test-support/tiny-model';
import { errorLine } from './main';

let tmp: string;
let busy: Server;
let busyPort: number;

beforeAll(async () => {
  tmp = await makeTempDir('loftq-hard-');
  busy = createServer();
  await new Promise<void>((done) => busy.listen(0, '127.0.0.1', done));
  busyPort = (busy.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((done) => busy.close(done));
  await rm(tmp, { recursive: true, force: true });
});

/** Exit 1 and one error line (progress lines may come before it), matching `pattern`. */
function oneLineError(r: ReturnType<typeof loftq>, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines.filter((l) => l.startsWith('loftq: ')), r.stderr).toHaveLength(1);
  const last = lines.at(-1)!;
  expect(last).toMatch(/^loftq: /);
  expect(last).not.toMatch(/internal error|\[object Object\]|at .*\.js:\d+/);
  expect(last).toMatch(pattern);
}

describe('one clear line for bad input', () => {
  it('serve: a port out of range, not whole, or in use', () => {
    oneLineError(loftq('serve', '--port', '99999', '--runs', join(tmp, 'runs')), /--port must be a whole number from 0 to 65535, got 99999/);
    oneLineError(loftq('serve', '--port', '1.5', '--runs', join(tmp, 'runs')), /--port must be a whole number from 0 to 65535, got 1.5/);
    oneLineError(loftq('serve', '--port', String(busyPort), '--runs', join(tmp, 'runs')), new RegExp(`port ${busyPort} on 127.0.0.1 is in use`));
  });

  it('a shard name with a newline cannot forge a second line', async () => {
    const model = join(tmp, 'model');
    await writeTinyModel(model, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20, maxShardBytes: 1 });
    const index = JSON.parse(JSON.stringify({ metadata: {}, weight_map: { 'model.embed_tokens.weight': 'evil\nloftq: everything is fine.safetensors' } }));
    writeFileSync(join(model, 'model.safetensors.index.json'), JSON.stringify(index));
    oneLineError(loftq('inspect', model), /shard evil\\nloftq: everything is fine.safetensors is missing/);
  });

  it('escapes control characters and caps the length', () => {
    expect(errorLine('a\nb\tc\u0007')).toBe('a\\nb c\\x07');
    const long = errorLine('x'.repeat(5000));
    expect(long.length).toBe(600);
    expect(long.endsWith('…')).toBe(true);
  });
});

describe('damaged run files and mismatched tensors: one line each', () => {
  let model: string;
  let run: string;
  let data: string;
  beforeAll(async () => {
    model = join(tmp, 'base');
    await writeTinyModel(model, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
    run = join(tmp, 'run');
    expect(loftq('quantize', model, '--out', run, '--rank', '2', '--iters', '2').code).toBe(0);
    data = join(tmp, 'data.jsonl');
    writeFileSync(data, '{"text": "hello there"}\n');
  });

  /** A copy of the run with one file changed. */
  function damaged(name: string, file: string, content: (old: string) => string): string {
    const dir = join(tmp, name);
    cpSync(run, dir, { recursive: true });
    writeFileSync(join(dir, file), content(readFileSync(join(dir, file), 'utf8')));
    return dir;
  }

  it('run.json that is null or has a wrongly typed field', () => {
    oneLineError(loftq('export', damaged('null-run', 'run.json', () => 'null'), '--format', 'peft', '--out', join(tmp, 'x1')), /not a run record \(the file holds null\)/);
    const badStatus = damaged('bad-status', 'run.json', (t) => JSON.stringify({ ...JSON.parse(t), status: null }));
    oneLineError(loftq('export', badStatus, '--format', 'peft', '--out', join(tmp, 'x2')), /"status" must be one of/);
    const badConfig = damaged('bad-config', 'run.json', (t) => JSON.stringify({ ...JSON.parse(t), config: 'x' }));
    oneLineError(loftq('eval', badConfig, '--data', data), /"config" must be an object/);
  });

  it('adapter_config.json with r = 0, a wrongly typed alpha, or an r the tensors disagree with', () => {
    const adapter = (over: Record<string, unknown>) => (t: string) => JSON.stringify({ ...JSON.parse(t), ...over });
    oneLineError(loftq('export', damaged('r0', 'adapter/adapter_config.json', adapter({ r: 0 })), '--format', 'merged', '--out', join(tmp, 'x5')), /"r" must be a positive integer, got 0/);
    oneLineError(loftq('export', damaged('alpha', 'adapter/adapter_config.json', adapter({ lora_alpha: 'x' })), '--format', 'merged', '--out', join(tmp, 'x3')), /"lora_alpha" must be a positive number/);
    oneLineError(loftq('export', damaged('r3', 'adapter/adapter_config.json', adapter({ r: 3 })), '--format', 'merged', '--out', join(tmp, 'x6')), /lora_A has shape \[2, \d+\], expected \[3, \d+\]/);
  });

  it('an unknown quantizer name in quantized.safetensors, and a missing backbone', () => {
    const dir = join(tmp, 'bad-quant');
    cpSync(run, dir, { recursive: true });
    const path = join(dir, 'quantized.safetensors');
    const bytes = readFileSync(path);
    const text = bytes.toString('latin1').replace('"quant\\":\\"nf\\"', '"quant\\":\\"xx\\"');
    writeFileSync(path, Buffer.from(text, 'latin1'));
    oneLineError(loftq('export', dir, '--format', 'peft', '--out', join(tmp, 'x7')), /unknown quantizer "xx"/);
    const nobackbone = join(tmp, 'no-backbone');
    cpSync(run, nobackbone, { recursive: true });
    renameSync(join(nobackbone, 'backbone'), join(tmp, 'moved-backbone'));
    oneLineError(loftq('export', nobackbone, '--format', 'peft', '--out', join(tmp, 'x4')), /the run has no backbone\/ folder/);
  });

  it('a symlinked backbone or model file is copied as data, never as a link', () => {
    // Every file of the run's backbone/ is a link to a copy kept elsewhere.
    const linked = join(tmp, 'linked-run');
    cpSync(run, linked, { recursive: true });
    const elsewhere = join(tmp, 'elsewhere');
    renameSync(join(linked, 'backbone'), elsewhere);
    mkdirSync(join(linked, 'backbone'));
    const files = readdirSync(elsewhere);
    expect(files).toContain('unquantized.safetensors');
    for (const f of files) symlinkSync(join(elsewhere, f), join(linked, 'backbone', f));
    const plain = join(tmp, 'export-plain');
    const out = join(tmp, 'export-linked');
    expect(loftq('export', run, '--format', 'merged', '--out', plain).code).toBe(0);
    const r = loftq('export', linked, '--format', 'merged', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const exported = readdirSync(out).filter((f) => !f.startsWith('.'));
    expect(exported).toContain('config.json');
    for (const f of exported) {
      expect(lstatSync(join(out, f)).isFile(), f).toBe(true);
      expect(readFileSync(join(out, f)).equals(readFileSync(join(plain, f))), f).toBe(true);
    }
    // A model folder whose config.json is a link: the run keeps a copy.
    const linkedModel = join(tmp, 'linked-model');
    cpSync(model, linkedModel, { recursive: true });
    renameSync(join(linkedModel, 'config.json'), join(tmp, 'model-config.json'));
    symlinkSync(join(tmp, 'model-config.json'), join(linkedModel, 'config.json'));
    const q = loftq('quantize', linkedModel, '--out', join(tmp, 'linked-model-run'), '--rank', '2', '--iters', '1');
    expect(q.code, q.stderr).toBe(0);
    const kept = join(tmp, 'linked-model-run', 'backbone', 'config.json');
    expect(lstatSync(kept).isFile()).toBe(true);
    expect(readFileSync(kept, 'utf8')).toBe(readFileSync(join(tmp, 'model-config.json'), 'utf8'));
  });

  it('config vocab_size different from the embedding rows', async () => {
    const m = join(tmp, 'vocab');
    await writeTinyModel(m, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
    const config = JSON.parse(readFileSync(join(m, 'config.json'), 'utf8'));
    writeFileSync(join(m, 'config.json'), JSON.stringify({ ...config, vocab_size: 40 }));
    oneLineError(loftq('quantize', m, '--out', join(tmp, 'never')), /"model.embed_tokens.weight" has shape \[20, 16\] but config.json says vocab_size 40/);
  });
});

