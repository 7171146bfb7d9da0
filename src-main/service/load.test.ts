// A burst of heavy requests (issue 12): 50 concurrent inspectModel of folders with a 600 MB
// config.json or a 99 MB safetensors header (just under the format's limit, so it is read and
// parsed) are served a few at a time: every one gets its answer, memory stays bounded, and
// light requests answer meanwhile.
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, writeTinyModel } from '../test-support/tiny-model';
import { StudioService } from './studio-service';

let tmp: string;
let service: StudioService;
let model: string;
let bigConfig: string;
let bigHeader: string;

let manyTensors: string;

/** Rewrites a model's model.safetensors with `extra` merged into its header. */
function rewriteHeader(file: string, extra: (dataLen: number) => string): number {
  const raw = readFileSync(file);
  const len = Number(raw.readBigUInt64LE(0));
  const text = Buffer.from(`${raw.subarray(8, 8 + len).toString('utf8').trimEnd().slice(0, -1)},${extra(raw.length - 8 - len)}}`);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  writeFileSync(file, Buffer.concat([prefix, text, raw.subarray(8 + len)]));
  return text.length;
}

const HEADER_BYTES = 99 * 10 ** 6; // the format's limit is 100 MB
/** A 99 MB header that is cheap to parse: one long metadata string. */
const longMetadata = () => `"__metadata__":{"pad":"${'v'.repeat(HEADER_BYTES)}"}`;
/** A 99 MB header that is as costly as headers get: ~1.3 million (empty) tensors. */
function manyEntries(dataLen: number): string {
  const parts: string[] = [];
  for (let i = 0, bytes = 0; bytes < HEADER_BYTES; i++) {
    const e = `"pad.${i}.weight":{"dtype":"F32","shape":[0],"data_offsets":[${dataLen},${dataLen}]}`;
    parts.push(e);
    bytes += e.length + 1;
  }
  return parts.join(',');
}

beforeAll(async () => {
  tmp = await makeTempDir('loftq-load-');
  service = new StudioService({ runsDir: join(tmp, 'runs'), demoModel: null, version: 'test', transport: 'websocket', throttleMs: 0 });
  model = join(tmp, 'model');
  await writeTinyModel(model, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
  bigConfig = join(tmp, 'big-config');
  await writeTinyModel(bigConfig, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
  // Sparse: 600 MB by its size, no disk used.
  truncateSync(join(bigConfig, 'config.json'), 600 * 2 ** 20);
  bigHeader = join(tmp, 'big-header');
  await writeTinyModel(bigHeader, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
  expect(rewriteHeader(join(bigHeader, 'model.safetensors'), longMetadata)).toBeGreaterThan(HEADER_BYTES);
  manyTensors = join(tmp, 'many-tensors');
  await writeTinyModel(manyTensors, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
  expect(rewriteHeader(join(manyTensors, 'model.safetensors'), manyEntries)).toBeGreaterThan(HEADER_BYTES);
});

afterAll(async () => {
  await service.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('heavy requests are bounded', () => {
  it('50 concurrent inspections all answer, and info answers meanwhile', async () => {
    // Two of the costliest kind (about 10 s each here), the rest cycling through the others.
    const targets = Array.from({ length: 50 }, (_, i) => (i === 10 || i === 30 ? manyTensors : [model, bigConfig, bigHeader][i % 3]));
    let peakRss = process.memoryUsage().rss;
    const before = peakRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
    const all = Promise.allSettled(targets.map((t) => service.inspectModel(t)));
    const t0 = performance.now();
    const info = await service.info();
    expect(info.version).toBe('test');
    expect(performance.now() - t0).toBeLessThan(2000);
    const results = await all;
    clearInterval(sampler);
    const byTarget = (t: string) => results.filter((_, i) => targets[i] === t);
    // Ordinary folders and the 99 MB header are inspected; the 600 MB config is refused by its
    // size, with one line, before a byte of it is read.
    expect(byTarget(model).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(byTarget(bigHeader).every((r) => r.status === 'fulfilled')).toBe(true);
    for (const r of byTarget(manyTensors)) expect(r.status === 'fulfilled' && r.value.weight_files).toBe(1);
    for (const r of byTarget(bigConfig)) expect(r.status === 'rejected' && String(r.reason.message)).toMatch(/over the .*-byte limit/);
    // Two at a time: what 18 parsed 99 MB headers would need at once (tens of GB) never is.
    expect(peakRss - before).toBeLessThan(2 * 2 ** 30);
  }, 300_000);
});
