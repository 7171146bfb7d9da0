// The addon's functions are declared once (CudaNative in cuda-addon.ts) and everything else
// follows from it or is checked against it here, so that the three places a kernel touches —
// its op's file in native/src/, the signature, the JavaScript model of the kernels — cannot
// drift apart unnoticed: the ABI stamp is the interface's hash; every function has exactly one
// C++ body `js::<name>` taking its generated argument struct, and no body exists without a
// declaration; the JavaScript model defines only declared functions, each with its arity; and
// where the addon is built (npm run build:native; no GPU needed to load it), it registers
// exactly the declared functions under this ABI version and reads their arguments by name.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADDON_SOURCE, abiHash, cppHeader, parseAddonApi, stampState } from '../../../scripts/addon-api.mjs';
import { fakeCudaNative } from '../../test-support/fake-cuda-native';
import { ADDON_ABI_VERSION, addonCandidates, loadAddon } from './cuda-addon';

const root = new URL('../../../', import.meta.url).pathname;
const nativeSrc = join(root, 'native', 'src');
const table = parseAddonApi(readFileSync(ADDON_SOURCE, 'utf8'));
const arity = new Map(table.map((f) => [f.name, f.params.length]));

/** `napi_value <name>(napi_env env, const <Struct>& a)` bodies inside `namespace js`, by file. */
function bindings(): Array<{ name: string; struct: string; file: string }> {
  const out: Array<{ name: string; struct: string; file: string }> = [];
  for (const file of readdirSync(nativeSrc).filter((f) => /\.(cu|cpp)$/.test(f))) {
    const text = readFileSync(join(nativeSrc, file), 'utf8');
    for (const ns of text.matchAll(/namespace js \{([\s\S]*?)\}\s*\/\/ namespace js/g)) {
      for (const m of ns[1].matchAll(/napi_value\s+(\w+)\s*\(\s*napi_env\s+\w+\s*,\s*const\s+(\w+)\s*&/g)) out.push({ name: m[1], struct: m[2], file });
    }
  }
  return out;
}

describe('the addon functions, declared once', () => {
  it('reads every function of CudaNative, with its parameters and options objects', () => {
    expect(table.length).toBeGreaterThanOrEqual(40);
    const gemmTyped = table.find((f) => f.name === 'gemmTyped')!;
    expect(gemmTyped.params).toHaveLength(1);
    expect(gemmTyped.params[0].kind).toBe('options');
    const fields = gemmTyped.params[0].fields!;
    expect(fields.map((f) => f.name)).toEqual(['c', 'cType', 'a', 'b', 'abType', 'm', 'n', 'k', 'transA', 'transB', 'tf32', 'alpha', 'beta', 'batch', 'strideA', 'strideB', 'strideC', 'offsetA', 'offsetB', 'offsetC']);
    expect(fields.find((f) => f.name === 'alpha')).toMatchObject({ type: 'number', optional: true, default: '1' });
    expect(fields.find((f) => f.name === 'm')).toMatchObject({ type: 'Int', optional: false });
    expect(table.find((f) => f.name === 'ropeHeadsBackward')!.params.map((p) => p.type)).toEqual(['NativeBuffer', 'NativeBuffer', 'Int', 'Int', 'Int', 'Int', 'Int', 'NativeBuffer | null', 'NativeBuffer | null']);
    expect(arity.get('memory')).toBe(0);
    // No function takes more than ten positional arguments: beyond that, an options object.
    expect(table.filter((f) => f.params.length > 10).map((f) => f.name)).toEqual([]);
  });

  it('stamps the ABI version with the hash of the interface', () => {
    const { stamped, hash } = stampState();
    expect(stamped, 'ADDON_ABI_VERSION is stale: run node scripts/addon-api.mjs --stamp').toBe(hash);
    expect(ADDON_ABI_VERSION).toBe(abiHash(table));
    // Any change of a name, a parameter or a default changes the version.
    const changed = structuredClone(table);
    changed.find((f) => f.name === 'gemmTyped')!.params[0].fields!.find((f) => f.name === 'alpha')!.default = '2';
    expect(abiHash(changed)).not.toBe(abiHash(table));
  });

  it('has one C++ body per function and none beside them', () => {
    const found = bindings();
    const counts = new Map<string, number>();
    for (const b of found) counts.set(b.name, (counts.get(b.name) ?? 0) + 1);
    expect(table.filter((f) => counts.get(f.name) !== 1).map((f) => `${f.name}: ${counts.get(f.name) ?? 0} bodies`)).toEqual([]);
    expect(found.filter((b) => !arity.has(b.name)).map((b) => `${b.file}: js::${b.name} is not in CudaNative`)).toEqual([]);
    for (const b of found) expect(b.struct, `${b.file}: js::${b.name}`).toBe(`${b.name[0].toUpperCase()}${b.name.slice(1)}Args`);
  });

  it('gives the JavaScript model of the kernels the declared names and arities', () => {
    const fake = fakeCudaNative() as unknown as Record<string, unknown>;
    const defined = Object.entries(fake).filter(([name, v]) => typeof v === 'function' && name !== 'live');
    expect(defined.length).toBeGreaterThan(20);
    expect(defined.filter(([name]) => !arity.has(name)).map(([name]) => name)).toEqual([]);
    expect(defined.filter(([name, fn]) => (fn as (...args: unknown[]) => unknown).length !== arity.get(name)).map(([name, fn]) => `${name}: ${(fn as () => void).length} parameters, declared ${arity.get(name)}`)).toEqual([]);
    expect(fake.abiVersion).toBe(ADDON_ABI_VERSION);
  });

  it('derives the C++ readers and the registration from the table', () => {
    const header = cppHeader(table);
    expect(header).toContain(`constexpr uint32_t kAbiVersion = 0x${ADDON_ABI_VERSION.toString(16).padStart(8, '0')}u;`);
    for (const f of table) expect(header).toContain(`{"${f.name}", call_${f.name}},`);
    expect(header).toContain('double alpha = 1;');
    expect(header).toContain('a.rows = readInt(env, in.at(4), "rmsNorm: rows");');
    expect(header).toContain('if (const napi_value v = property(env, o0, "diff", true, "quantize")) { a.diffHandle = v; a.diff = readNullableBuffer(env, v, "quantize: diff"); }');
  });

  const built = process.platform === 'linux' && process.arch === 'x64' && addonCandidates().some((p) => existsSync(p));
  it.runIf(built)('the built addon registers exactly the declared functions and reads their arguments by name', () => {
    const native = loadAddon() as unknown as Record<string, unknown>;
    expect(native.abiVersion).toBe(ADDON_ABI_VERSION);
    expect(Object.keys(native).filter((k) => typeof native[k] === 'function').sort()).toEqual(table.map((f) => f.name).sort());
    const call = (name: string, ...args: unknown[]) => () => (native[name] as (...a: unknown[]) => unknown)(...args);
    expect(call('gemmTyped', {})).toThrow('gemmTyped: option c is missing');
    expect(call('gemmTyped', 5)).toThrow('gemmTyped: o is not an options object');
    expect(call('alloc', 1.5)).toThrow('alloc: bytes is not a whole number');
    expect(call('rmsNorm')).toThrow('rmsNorm: expected 7 arguments, got 0');
    expect(call('view', {}, 0, 1)).toThrow('view: buf is not a device buffer');
  });

  it('refuses a signature it cannot read', () => {
    const source = (member: string) => `export interface CudaNative {\n  readonly abiVersion: number;\n  ${member}\n}\n`;
    expect(parseAddonApi(source('f(x: Int, flag: boolean): void;'))[0].params.map((p) => p.name)).toEqual(['x', 'flag']);
    expect(() => parseAddonApi(source('f(x: Int, flag?: boolean): void;'))).toThrow(/must be a field of an options object/);
    expect(() => parseAddonApi(source('f(x: bigint): void;'))).toThrow(/type bigint is not one the addon reads/);
    expect(() => parseAddonApi(source('f(x: Unknown): void;'))).toThrow(/type Unknown/);
  });
});
