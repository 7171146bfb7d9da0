// A burst of heavy requests (issue 12): 50 concurrent inspectModel, half of them of a folder
// with an 80 MB config.json, are served a few at a time, every one gets its answer (the big
// config refused by its size cap before it is read), and light requests answer meanwhile.
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, writeTinyModel } from '../test-support/tiny-model';
import { StudioService } from './studio-service';

let tmp: string;
let service: StudioService;
let model: string;
let bigConfig: string;

beforeAll(async () => {
  tmp = await makeTempDir('loftq-load-');
  service = new StudioService({ runsDir: join(tmp, 'runs'), demoModel: null, version: 'test', transport: 'websocket', throttleMs: 0 });
  model = join(tmp, 'model');
  await writeTinyModel(model, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
  bigConfig = join(tmp, 'big-config');
  await writeTinyModel(bigConfig, { layers: 1, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 20 });
  writeFileSync(join(bigConfig, 'config.json'), JSON.stringify({ model_type: 'llama', pad: 'q'.repeat(80 * 2 ** 20) }));
});

afterAll(async () => {
  await service.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('heavy requests are bounded', () => {
  it('50 concurrent inspections all answer, and info answers meanwhile', async () => {
    const targets = Array.from({ length: 50 }, (_, i) => (i % 2 ? bigConfig : model));
    const all = Promise.allSettled(targets.map((t) => service.inspectModel(t)));
    const t0 = performance.now();
    const info = await service.info();
    expect(info.version).toBe('test');
    expect(performance.now() - t0).toBeLessThan(2000);
    const results = await all;
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(25);
    // The 80 MB config is over the JSON cap: refused with one line, not parsed.
    for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) expect(String(r.reason.message)).toMatch(/over the .*-byte limit/);
  });
});
