// The renderer runs in a sandboxed page: it may import only its own files, npm packages
// bundled for the browser, and the API contract's types. (Read through Vite, not Node.)
import { describe, expect, it } from 'vitest';

const sources = import.meta.glob(['./**/*.{ts,tsx}', '!./**/*.test.{ts,tsx}', '!./test/**'], { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g;

const NODE_BUILTINS = /^(node:|fs$|fs\/|path$|os$|child_process$|crypto$|http$|https$|net$|url$|worker_threads$|stream$|events$|util$|buffer$|process$)/;

describe('renderer boundaries', () => {
  it('finds the sources', () => {
    expect(Object.keys(sources).length).toBeGreaterThan(20);
  });

  for (const [file, text] of Object.entries(sources)) {
    it(`${file} imports nothing it must not`, () => {
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[3] ?? m[4] ?? m[5];
        const typeOnly = Boolean(m[2]);
        expect(spec, `${file}: ${spec}`).not.toMatch(NODE_BUILTINS);
        expect(spec, `${file}: ${spec}`).not.toMatch(/^electron/);
        expect(m[5], `${file}: require()`).toBeUndefined();
        if (spec.includes('src-main/')) {
          expect(spec, `${file}: only the API contract`).toMatch(/src-main\/api\/contract$/);
          expect(typeOnly, `${file}: the contract must be imported with 'import type'`).toBe(true);
        }
      }
      expect(text, `${file} uses Node globals`).not.toMatch(/\b(process\.(env|cwd|argv|exit)|Buffer\.|__dirname|__filename)\b/);
    });
  }
});
