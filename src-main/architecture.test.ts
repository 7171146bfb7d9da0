// The import structure of src-main, checked: no import cycle anywhere (type-only imports
// count: a cycle of types is still two modules that cannot be read one before the other), and
// imports point down the layers only. The engine's layers, lowest first, are ENGINE_LAYERS
// below (tensor/, the device layer, sits on util/ and the file formats of io/ alone; rules/,
// the pure domain rules the renderer shares, sits under io/); around
// the engine, the app's layers are APP_LAYERS; the engine imports nothing of them, nor
// Electron or React. Tests and test-support/ may reach anywhere (they are not layered), but
// their imports take part in the cycle check. docs/ARCHITECTURE.md describes the same order.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const srcMain = join(root, 'src-main');

/**
 * The engine's layers, lowest first: a module may import its own layer and the layers before
 * it, never one after. Layers on one line are independent of each other (neither imports the other).
 */
const ENGINE_LAYERS: string[][] = [
  ['errors', 'util'],
  // The pure domain rules the renderer imports too (src-renderer/boundaries.test.ts keeps them
  // free of Node and of every engine module but errors.ts).
  ['rules'],
  ['io'],
  ['tensor'],
  ['quant', 'lowrank', 'text'],
  ['adapter', 'runs'],
  ['init', 'model'],
  ['gguf', 'grad'],
  ['train', 'export', 'plan'],
  ['jobs'],
];

/** Around the engine, lowest first (the renderer, src-renderer/, is checked by its own test). */
const APP_LAYERS: string[][] = [['engine'], ['api'], ['wire'], ['service'], ['server', 'preload'], ['host', 'cli']];

/** Packages the engine must never import: it runs in the CLI, the server and tests alike. */
const NOT_IN_ENGINE = /^(electron|react|react-dom|zustand|recharts)(\/|$)/;

interface SourceFile {
  path: string;
  /** Resolved relative imports (files in src-main) and bare package names. */
  files: string[];
  packages: string[];
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Import specifiers: static imports and re-exports (type-only too), side-effect imports, import() and require(). */
export function importSpecifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  for (const m of code.matchAll(/^\s*(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]/gm)) found.push(m[1]);
  for (const m of code.matchAll(/\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]);
  return found;
}

function resolveImport(from: string, spec: string): string | null {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base, `${base}.ts`, `${base}.tsx`, join(base, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not this one
    }
  }
  return null;
}

const sources: SourceFile[] = walk(srcMain).map((path) => {
  const files: string[] = [];
  const packages: string[] = [];
  for (const spec of importSpecifiers(readFileSync(path, 'utf8'))) {
    if (spec.startsWith('.')) {
      const target = resolveImport(path, spec);
      if (!target) throw new Error(`${relative(root, path)} imports ${spec}, which does not resolve`);
      files.push(target);
    } else packages.push(spec);
  }
  return { path, files, packages };
});

/** The strongly connected components of more than one file (Tarjan). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** Tests and test helpers are not layered. */
const layered = (path: string) => !/\.test\.tsx?$/.test(path) && !relative(srcMain, path).startsWith('test-support/');

/** engine/<layer> for engine modules (errors.ts is the layer `errors`), the top folder elsewhere. */
function layerOf(path: string): { app: string; engine: string | null } {
  const parts = relative(srcMain, path).split('/');
  if (parts[0] !== 'engine') return { app: parts[0], engine: null };
  return { app: 'engine', engine: parts.length === 2 ? parts[1].replace(/\.ts$/, '') : parts[1] };
}

const rankIn = (layers: string[][], name: string) => layers.findIndex((row) => row.includes(name));

/** Imports that point up (or sideways between independent layers), as "from → to". */
export function wrongWayImports(files: readonly SourceFile[]): string[] {
  const bad: string[] = [];
  for (const f of files.filter((s) => layered(s.path))) {
    const from = layerOf(f.path);
    for (const target of f.files) {
      const to = layerOf(target);
      const edge = `${relative(srcMain, f.path)} → ${relative(srcMain, target)}`;
      if (from.app !== to.app) {
        const a = rankIn(APP_LAYERS, from.app), b = rankIn(APP_LAYERS, to.app);
        if (a < 0 || b < 0) bad.push(`${edge} (a folder outside the known layers)`);
        else if (b >= a) bad.push(edge);
      } else if (from.engine && to.engine && from.engine !== to.engine) {
        const a = rankIn(ENGINE_LAYERS, from.engine), b = rankIn(ENGINE_LAYERS, to.engine);
        if (a < 0 || b < 0) bad.push(`${edge} (an engine folder outside ENGINE_LAYERS)`);
        else if (b >= a) bad.push(edge);
      }
    }
    if (from.app === 'engine') for (const p of f.packages) if (NOT_IN_ENGINE.test(p)) bad.push(`${relative(srcMain, f.path)} → ${p}`);
  }
  return bad;
}

describe('architecture', () => {
  it('reads every module of src-main and its imports', () => {
    expect(sources.length).toBeGreaterThan(100);
    const tensorDevice = sources.find((s) => s.path.endsWith('engine/tensor/device.ts'))!;
    expect(tensorDevice.files.some((f) => f.endsWith('engine/tensor/nn.ts'))).toBe(true);
  });

  it('has no import cycle', () => {
    const graph = new Map(sources.map((s) => [s.path, s.files]));
    expect(cycles(graph).map((c) => c.map((p) => relative(srcMain, p)).join(' ↔ '))).toEqual([]);
  });

  it('imports down the layers only', () => {
    expect(wrongWayImports(sources)).toEqual([]);
  });

  it('keeps the device layer on the floor: tensor/ imports only errors, util/ and io/ of the engine', () => {
    const up = sources
      .filter((s) => layered(s.path) && layerOf(s.path).engine === 'tensor')
      .flatMap((s) => s.files.filter((t) => !['tensor', 'errors', 'util', 'io'].includes(layerOf(t).engine ?? '')).map((t) => `${relative(srcMain, s.path)} → ${relative(srcMain, t)}`));
    expect(up).toEqual([]);
  });

  it('the checks see what they must', () => {
    // (Assembled, so that this file's own imports are not these.)
    const [im, ex] = ['im' + 'port', 'ex' + 'port'];
    const sample = `${im} a from './a';\n${im} type { B } from "../b";\n${ex} { c } from './c';\n${ex} * from './d';\n${im} './e';\nconst f = await ${im}('./f');\n// ${im} g from './g';\n/* ${im} h from './h'; */`;
    expect(importSpecifiers(sample)).toEqual(['./a', '../b', './c', './d', './e', './f']);
    const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']], ['e', ['e']]]);
    expect(cycles(g).map((c) => c.join(','))).toEqual(expect.arrayContaining(['a,b,c', 'e']));
    expect(cycles(g)).toHaveLength(2);
    const f = (path: string, files: string[], packages: string[] = []): SourceFile => ({ path: join(srcMain, path), files: files.map((t) => join(srcMain, t)), packages });
    expect(
      wrongWayImports([
        f('engine/tensor/x.ts', ['engine/quant/codebook.ts', 'engine/util/random.ts']),
        f('engine/model/y.ts', ['engine/export/peft.ts', 'engine/errors.ts']),
        f('engine/jobs/z.ts', ['service/studio-service.ts'], ['electron']),
        f('cli/w.ts', ['server/server.ts', 'engine/jobs/z.ts']),
        f('service/v.ts', ['host/main.ts']),
        f('engine/tensor/x.test.ts', ['engine/jobs/z.ts']),
      ]).map((e) => e.replace(/ \(.*\)$/, '')),
    ).toEqual(['engine/tensor/x.ts → engine/quant/codebook.ts', 'engine/model/y.ts → engine/export/peft.ts', 'engine/jobs/z.ts → service/studio-service.ts', 'engine/jobs/z.ts → electron', 'service/v.ts → host/main.ts']);
  });
});
