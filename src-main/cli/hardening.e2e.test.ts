// Bad input gives one clear line (issue 12): no stack trace, no "internal error", no line
// forged by data, for the serve command's port and for names that carry control characters.
import { writeFileSync } from 'node:fs';
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

function oneLineError(r: ReturnType<typeof loftq>, pattern: RegExp): void {
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^loftq: /);
  expect(lines[0]).not.toMatch(/internal error|\[object Object\]|at .*\.js:\d+/);
  expect(lines[0]).toMatch(pattern);
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
