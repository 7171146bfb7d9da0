// The project's documents stay readable and true to the tree: no tracked document under docs/
// (or the README) grows past 200 KB — one commit once turned ARCHITECTURE.md into 23.8 MB and
// nothing noticed — and every source path a Markdown document names exists.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const MAX_DOC_BYTES = 200 * 1024;
const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
const documents = tracked.filter((f) => f === 'README.md' || f.startsWith('docs/'));
const markdown = documents.filter((f) => f.endsWith('.md'));

/** Folders a document may name a path relative to (the engine's layers are named as `train/x.ts`). */
const BASES = ['', 'src-main/', 'src-main/engine/', 'src-renderer/', 'native/', 'native/src/', 'scripts/'];
/** Build outputs and the device pack are made, not tracked. */
const BUILT = /^(dist|out|\.device)\//;
const SOURCE_EXT = /\.(ts|tsx|mjs|cjs|js|cu|cuh|cpp|h|py|sh)$/;

/** `context.{h,cu}` names two files. */
function expandBraces(token: string): string[] {
  const m = /^(.*)\{([^}]*)\}(.*)$/.exec(token);
  if (!m) return [token];
  return m[2].split(',').flatMap((alt) => expandBraces(`${m[1]}${alt}${m[3]}`));
}

/** Path-like tokens with a directory part and a source extension, outside URLs and absolute paths. */
export function sourcePathsNamed(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/(?<![\w/.:-])([A-Za-z0-9_.-]+\/[A-Za-z0-9_./{},*-]+)/g)) {
    for (const raw of expandBraces(m[1].replace(/[.,]+$/, ''))) {
      if (!SOURCE_EXT.test(raw) || raw.includes('*') || raw.startsWith('../') || BUILT.test(raw)) continue;
      found.add(raw);
    }
  }
  return [...found];
}

function exists(path: string): boolean {
  return BASES.some((base) => tracked.includes(base + path));
}

describe('documents', () => {
  it('are found', () => {
    expect(markdown).toContain('README.md');
    expect(markdown).toContain('docs/ARCHITECTURE.md');
  });

  it.each(documents)('%s is at most 200 KB', (doc) => {
    expect(statSync(root + doc).size).toBeLessThanOrEqual(MAX_DOC_BYTES);
  });

  it.each(markdown)('%s names only source paths that exist', (doc) => {
    const missing = sourcePathsNamed(readFileSync(root + doc, 'utf8')).filter((p) => !exists(p));
    expect(missing).toEqual([]);
  });

  it('the path finder sees relative, braced and plain paths, not URLs', () => {
    const text = 'see train/train-loop.ts, native/src/context.{h,cu} and https://x.org/a/b.py or /tmp/x/y.ts';
    expect(sourcePathsNamed(text).sort()).toEqual(['native/src/context.cu', 'native/src/context.h', 'train/train-loop.ts']);
  });
});
