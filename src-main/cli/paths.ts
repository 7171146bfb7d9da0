// Files that ship with the project (the demo model, the built dashboard), found from
// wherever the CLI runs: the bundle in dist/ or the sources under src-main/.
import { join } from 'node:path';
import { findUp } from '../engine/util/find-up';

export { findUp };

export const demoModelPath = (): string | null => findUp(join('assets', 'demo-model'), 'config.json');
export const rendererPath = (): string | null => findUp(join('out', 'renderer'), 'index.html');
