// The renderer runs in a sandboxed page: it may import only its own files, npm packages
// bundled for the browser, the API contract's types, and the engine's pure domain rules
// (src-main/engine/rules/: the bits-map grammar, module facts, the planner, average bits),
// which in turn import nothing but each other and engine/errors.ts — no Node, no other engine
// module. (Read through Vite, not Node.)
import { describe, expect, it } from 'vitest';

const rendererSources = import.meta.glob(['./**/*.{ts,tsx}', '!./**/*.test.{ts,tsx}', '!./test/**'], { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
const pureSources = import.meta.glob(['../src-main/engine/rules/*.ts', '!../src-main/engine/rules/*.test.ts', '../src-main/engine/errors.ts'], { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g;

const NODE_BUILTINS = /^(node:|fs$|fs\/|path$|os$|child_process$|crypto$|http$|https$|net$|url$|worker_threads$|stream$|events$|util$|buffer$|process$)/;
const NODE_GLOBALS = /\b(process\.(env|cwd|argv|exit|platform)|Buffer\.|__dirname|__filename|require\()/;

/** The repository path an import names, from the importing file (both relative to src-renderer/). */
function resolveFrom(file: string, spec: string): string {
  const parts: string[] = [];
  for (const p of [...file.split('/').slice(0, -1), ...spec.split('/')]) {
    if (p === '..' && parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
    else if (p !== '.') parts.push(p);
  }
  return parts.join('/').replace(/\.(ts|tsx)$/, '');
}

const CONTRACT = '../src-main/api/contract';
const isPure = (path: string) => /^\.\.\/src-main\/engine\/rules\/[\w-]+$/.test(path) || path === '../src-main/engine/errors';

/** What is wrong with one file's imports (empty when nothing). `pure`: the file is one of the pure modules. */
function violations(file: string, text: string, pure: boolean): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[3] ?? m[4] ?? m[5];
    const typeOnly = Boolean(m[2]);
    if (NODE_BUILTINS.test(spec)) out.push(`${file}: imports Node's ${spec}`);
    else if (/^electron/.test(spec)) out.push(`${file}: imports ${spec}`);
    if (m[5]) out.push(`${file}: require()`);
    if (!spec.startsWith('.')) {
      if (pure) out.push(`${file}: a pure module imports the package ${spec}`);
      continue;
    }
    const target = resolveFrom(file, spec);
    if (pure) {
      if (!isPure(target)) out.push(`${file}: a pure module imports ${spec}, which is not one`);
    } else if (target.startsWith('../src-main/')) {
      if (target === CONTRACT) {
        if (!typeOnly) out.push(`${file}: the contract must be imported with 'import type'`);
      } else if (!isPure(target)) out.push(`${file}: imports the engine module ${spec} (only src-main/engine/rules/ and the contract's types)`);
    }
  }
  if (NODE_GLOBALS.test(text)) out.push(`${file}: uses Node globals`);
  return out;
}

describe('renderer boundaries', () => {
  it('finds the sources and the pure modules', () => {
    expect(Object.keys(rendererSources).length).toBeGreaterThan(20);
    expect(Object.keys(pureSources)).toEqual(expect.arrayContaining(['../src-main/engine/rules/bits-map.ts', '../src-main/engine/rules/planner.ts', '../src-main/engine/errors.ts']));
  });

  it('catches what it must (a check that cannot fail proves nothing)', () => {
    expect(violations('./lib/x.ts', "import { discoverTargets } from '../../src-main/engine/io/targets';", false)).toHaveLength(1);
    expect(violations('./lib/x.ts', "import { readFile } from 'node:fs';", false)).toHaveLength(1);
    expect(violations('./lib/x.ts', "import { API_METHODS } from '../../src-main/api/contract';", false)).toHaveLength(1);
    expect(violations('./lib/x.ts', "import { planBudget } from '../../src-main/engine/rules/budget';", false)).toEqual([]);
    expect(violations('../src-main/engine/rules/x.ts', "import { codebookLevels } from '../quant/codebook';", true)).toHaveLength(1);
    expect(violations('../src-main/engine/rules/x.ts', "import { join } from 'node:path';", true)).toHaveLength(2);
    expect(violations('../src-main/engine/rules/x.ts', 'const home = process.env.HOME;', true)).toHaveLength(1);
  });

  for (const [file, text] of Object.entries(rendererSources)) {
    it(`${file} imports nothing it must not`, () => {
      expect(violations(file, text, false)).toEqual([]);
    });
  }

  for (const [file, text] of Object.entries(pureSources)) {
    it(`${file} is pure: it imports only the other pure modules, nothing of Node`, () => {
      expect(violations(file, text, true)).toEqual([]);
    });
  }
});
