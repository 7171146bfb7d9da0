// Only regular files are read, JSON is bounded in size and depth (issue 12, "never block,
// never blow up"): a FIFO, a device or a socket anywhere a path is read is refused at once
// with one line, and a huge or absurdly nested JSON file is refused before it is parsed.
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../errors';
import { readLayers, readRunRecord } from '../runs/run-dir';
import { StudioService } from '../../service/studio-service';
import { openTextDataset, readTokens } from '../text/datasets';
import { loadTokenizer } from '../text/tokenizer';
import { makeTempDir, writeTinyModel } from '../../test-support/tiny-model';
import { loftq } from '../../test-support/cli';
import { readModelConfig } from './hf-config';
import { jsonDepth, readJson } from './json-file';
import { openModelWeights } from './model-weights';
import { openRegularFile } from './fs-util';
import { openSafetensors } from './safetensors-read';

let tmp: string;
let fifo: string;
let socketPath: string;
let server: Server;
const hasMkfifo = (() => {
  try {
    execFileSync('mkfifo', ['--version'], { stdio: 'ignore' });
    return process.platform !== 'win32';
  } catch {
    return false;
  }
})();

beforeAll(async () => {
  tmp = await makeTempDir('loftq-regular-');
  fifo = join(tmp, 'pipe');
  if (hasMkfifo) execFileSync('mkfifo', [fifo]);
  socketPath = join(tmp, 'sock');
  server = createServer();
  await new Promise<void>((done) => server.listen(socketPath, done));
});

afterAll(async () => {
  await new Promise((done) => server.close(done));
  await rm(tmp, { recursive: true, force: true });
});

/** Resolves with the error, failing the test if the call takes longer than a second (a hang). */
async function refusedQuickly(p: Promise<unknown>): Promise<Error> {
  const t0 = performance.now();
  const e = await p.then(
    () => new Error('expected a refusal'),
    (err: Error) => err,
  );
  expect(performance.now() - t0).toBeLessThan(1000);
  expect(e).toBeInstanceOf(UserError);
  expect(e.message).not.toMatch(/\n/);
  return e;
}

/** A new folder under tmp holding FIFOs of the given names. */
async function folderWithFifos(name: string, ...fifos: string[]): Promise<string> {
  const dir = join(tmp, name);
  await mkdir(dir);
  for (const f of fifos) execFileSync('mkfifo', [join(dir, f)]);
  return dir;
}

describe.skipIf(!hasMkfifo)('only regular files are opened', () => {
  it('refuses a FIFO, a device and a socket at once, naming what it is', async () => {
    expect((await refusedQuickly(openRegularFile(fifo))).message).toMatch(/is a named pipe, not a regular file/);
    expect((await refusedQuickly(openRegularFile('/dev/zero'))).message).toMatch(/is a device, not a regular file/);
    expect((await refusedQuickly(openRegularFile(socketPath))).message).toMatch(/(is a socket|cannot read)/);
    expect((await refusedQuickly(openRegularFile(tmp))).message).toMatch(/is a directory/);
  });

  it('everywhere a path is read: JSON files, safetensors, the weights index, datasets', async () => {
    await refusedQuickly(readJson(fifo));
    await refusedQuickly(openSafetensors(fifo));
    await refusedQuickly(openSafetensors('/dev/zero'));
    await refusedQuickly(openModelWeights(await folderWithFifos('model-fifo-index', 'model.safetensors.index.json')));
    await refusedQuickly(readModelConfig(await folderWithFifos('model-fifo-config', 'config.json')));
    const data = join(tmp, 'data.txt');
    execFileSync('mkfifo', [data]);
    const tokenizer = { encode: () => Promise.resolve(new Int32Array(0)), eosId: 0 } as unknown as Parameters<typeof readTokens>[1];
    await refusedQuickly(readTokens(openTextDataset(data), tokenizer, { separator: 'eos' }));
    await refusedQuickly(loadTokenizer(await folderWithFifos('model-fifo-tokenizer', 'tokenizer.json')));
    const run = await folderWithFifos('run-fifo', 'run.json', 'layers.json');
    await refusedQuickly(readRunRecord(run));
    await refusedQuickly(readLayers(run));
  });

  it('the service: four requests for a FIFO-indexed model are refused at once, and it keeps answering', async () => {
    const service = new StudioService({ runsDir: join(tmp, 'runs'), demoModel: null, version: 'test', transport: 'websocket', throttleMs: 0 });
    try {
      const model = join(tmp, 'service-fifo');
      await writeTinyModel(model, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
      await rm(join(model, 'model.safetensors'));
      execFileSync('mkfifo', [join(model, 'model.safetensors.index.json')]);
      const t0 = performance.now();
      const results = await Promise.allSettled(Array.from({ length: 4 }, () => service.inspectModel(model)));
      expect(performance.now() - t0).toBeLessThan(2000);
      for (const r of results) expect(r.status === 'rejected' && String(r.reason.message)).toMatch(/named pipe, not a regular file/);
      expect((await service.info()).version).toBe('test');
    } finally {
      await service.close();
    }
  });

  it('loftq inspect of a model whose index is a FIFO exits 1 with one line, at once', async () => {
    const model = join(tmp, 'cli-fifo');
    await writeTinyModel(model, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
    await rm(join(model, 'model.safetensors'));
    execFileSync('mkfifo', [join(model, 'model.safetensors.index.json')]);
    const t0 = performance.now();
    const r = loftq('inspect', model);
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/named pipe, not a regular file/);
  });
});

describe('JSON is bounded before it is parsed', () => {
  it('refuses a million-deep value with one line (no stack overflow anywhere after)', async () => {
    const path = join(tmp, 'deep.json');
    await writeFile(path, `{"a": ${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`);
    const e = await refusedQuickly(readJson(path));
    expect(e.message).toMatch(/nested 1000001 levels deep \(at most 256\)/);
    const model = join(tmp, 'deep-config');
    await mkdir(model);
    await writeFile(join(model, 'config.json'), `{"hidden_size": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    expect((await refusedQuickly(readModelConfig(model))).message).toMatch(/nested .* levels deep/);
  });

  it('refuses a file over its size cap before reading it', async () => {
    const path = join(tmp, 'big.json');
    await writeFile(path, `{"x": "${'y'.repeat(2 ** 20)}"}`);
    const e = await refusedQuickly(readJson(path, { maxBytes: 2 ** 20 }));
    expect(e.message).toMatch(/over the 1048576-byte limit/);
  });

  it('counts depth outside strings only', () => {
    expect(jsonDepth('{"a": "[[[[{{{{", "b": [1, [2]]}')).toBe(3);
    expect(jsonDepth('"\\"[[["')).toBe(0);
    expect(jsonDepth('[]')).toBe(1);
  });
});
