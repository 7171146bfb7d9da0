// The service's checks of an evaluation request's device, precision and batch (the app sends
// them; a hand-made WebSocket request may not be so polite): one-line refusals, no job started.
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../test-support/tiny-model';
import { StudioService } from './studio-service';

let tmp: string;
let service: StudioService;
const demo = resolve('assets/demo-model');
const text = resolve('assets/demo-data/eval.txt');

beforeAll(async () => {
  tmp = await makeTempDir('loftq-eval-request-');
  service = new StudioService({ runsDir: join(tmp, 'runs'), demoModel: null, version: 'test', transport: 'websocket', throttleMs: 0 });
});

afterAll(async () => {
  await service.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('startEval request checks', () => {
  it('refuses an unknown device, precision or batch before any job starts', async () => {
    await expect(service.startEval({ target: demo, data: text, device: 'gpu' as never })).rejects.toThrow(/must be one of auto, cpu, cuda/);
    await expect(service.startEval({ target: demo, data: text, precision: 'fp16' as never })).rejects.toThrow(/precision must be bf16 or fp32/);
    for (const batch of [0, 1.5, 5000]) await expect(service.startEval({ target: demo, data: text, batch })).rejects.toThrow(/batch must be a whole number from 1 to 1024/);
    expect(await service.listJobs()).toEqual([]);
  });
});
