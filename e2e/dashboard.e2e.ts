// The dashboard in web mode: `loftq serve` and Debian's Chromium (the flow is in support/flow.ts).
import { afterAll, beforeAll } from 'vitest';
import { dashboardFlow } from './support/flow';
import { haveChromium, startHarness, type Harness } from './support/harness';

let h: Harness;

beforeAll(async () => {
  if (!haveChromium()) throw new Error('Chromium is missing: `npm test` installs it (apt package chromium), or set CHROMIUM_PATH');
  h = await startHarness();
});

afterAll(async () => {
  await h?.stop();
});

dashboardFlow('dashboard (web mode)', () => h, 'web-');
