// The CUDA addon's functions are declared once: the CudaNative interface of
// src-main/engine/tensor/cuda-addon.ts. This reads that interface and derives the rest:
//  - the C++ side (native/build/generated/addon-api.h, written by build-native.mjs before it
//    compiles): per function a struct of its arguments, named as in TypeScript, the code that
//    reads them from JavaScript (checked: device buffers, whole numbers ≥ 0 for `Int`, dtype
//    codes for `Dtype`, booleans, typed arrays, options objects), the declaration of its body
//    `napi_value js::<name>(napi_env, const <Name>Args&)` (written beside its kernels in
//    native/src/), and the table the module registers;
//  - the ABI version: a hash of the table, stamped into cuda-addon.ts (ADDON_ABI_VERSION) and
//    compiled into the addon, so a build from another version of the table is refused by name.
//   node scripts/addon-api.mjs --check      the stamp matches the interface (exit 1 if not)
//   node scripts/addon-api.mjs --stamp      rewrite the stamp
//   node scripts/addon-api.mjs --header F   write the C++ header to F
// Parameter types it knows: NativeBuffer, NativeBuffer | null, Int, Dtype, number, boolean,
// ArrayBufferView / Float32Array / Int32Array, string[], and an interface of this file (an
// options object; a field `name?: T` with `@default V` in its comment may be left out).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
export const ADDON_SOURCE = join(root, 'src-main', 'engine', 'tensor', 'cuda-addon.ts');

const SCALARS = {
  NativeBuffer: { cpp: 'Buffer*', read: 'readBuffer', init: 'nullptr' },
  'NativeBuffer | null': { cpp: 'Buffer*', read: 'readNullableBuffer', init: 'nullptr' },
  Int: { cpp: 'int64_t', read: 'readInt', init: '0' },
  Dtype: { cpp: 'int', read: 'readDtype', init: '0' },
  number: { cpp: 'double', read: 'readNumber', init: '0' },
  boolean: { cpp: 'bool', read: 'readFlag', init: 'false' },
  ArrayBufferView: { cpp: 'Bytes', read: 'readBytes', init: '{}' },
  Float32Array: { cpp: 'Bytes', read: 'readBytes', init: '{}' },
  Int32Array: { cpp: 'Bytes', read: 'readBytes', init: '{}' },
  'string[]': { cpp: 'std::vector<std::string>', read: 'readStrings', init: '{}' },
};

/** The text between the braces that open at `open`. */
function braced(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error('unbalanced braces');
}

/** Splits at `sep` outside (), {}, [] and <>. */
function splitTop(text, sep) {
  const out = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if ('({[<'.includes(c)) depth++;
    else if (')}]>'.includes(c)) depth--;
    else if (c === sep && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out.map((s) => s.trim()).filter(Boolean);
}

/** The members of `export interface name { … }` with each one's preceding doc comment. */
function interfaceMembers(source, name) {
  const at = source.search(new RegExp(`export interface ${name}\\s*\\{`));
  if (at < 0) throw new Error(`no interface ${name} in ${ADDON_SOURCE}`);
  // Block comments become placeholders (their text stays with the member they precede, and
  // nothing in them can split a member); line comments go.
  const comments = [];
  const body = braced(source, source.indexOf('{', at))
    .replace(/\/\*[\s\S]*?\*\//g, (c) => `\uE000${comments.push(c) - 1}\uE000`)
    .replace(/\/\/[^\n]*/g, '');
  return splitTop(body, ';').map((m) => ({
    text: m.replace(/\uE000\d+\uE000/g, '').replace(/\s+/g, ' ').trim(),
    docs: [...m.matchAll(/\uE000(\d+)\uE000/g)].map((d) => comments[Number(d[1])]).join(' '),
  }));
}

function typeOf(type, source, where) {
  const t = type.replace(/\s+/g, ' ').trim();
  if (SCALARS[t]) return { kind: 'scalar', type: t };
  if (/^[A-Z]\w*$/.test(t) && new RegExp(`export interface ${t}\\s*\\{`).test(source)) {
    const fields = interfaceMembers(source, t).map(({ text, docs }) => {
      const m = /^(?:readonly\s+)?(\w+)(\??)\s*:\s*(.+)$/.exec(text);
      if (!m) throw new Error(`${t}: cannot read the field "${text}"`);
      const field = { name: m[1], type: m[3].trim(), optional: m[2] === '?' };
      if (!SCALARS[field.type]) throw new Error(`${t}.${field.name}: type ${field.type} is not one the addon reads`);
      const def = /@default\s+(\S+)/.exec(docs);
      if (field.optional) field.default = def ? def[1] : null;
      return field;
    });
    return { kind: 'options', type: t, fields };
  }
  throw new Error(`${where}: type ${t} is not one the addon reads`);
}

/** The addon's functions in declaration order: name and parameters (name, type, options fields). */
export function parseAddonApi(source) {
  const functions = [];
  for (const { text } of interfaceMembers(source, 'CudaNative')) {
    if (/^readonly\s+\w+\s*:/.test(text)) continue; // a property (abiVersion)
    const m = /^(\w+)\s*\(([\s\S]*)\)\s*:\s*(.+)$/.exec(text);
    if (!m) throw new Error(`CudaNative: cannot read the member "${text}"`);
    const params = splitTop(m[2], ',').map((p) => {
      if (/^\w+\?/.test(p)) throw new Error(`${m[1]}: an optional parameter (${p}) must be a field of an options object`);
      const pm = /^(\w+)\s*:\s*(.+)$/.exec(p);
      if (!pm) throw new Error(`${m[1]}: cannot read the parameter "${p}"`);
      return { name: pm[1], ...typeOf(pm[2], source, `${m[1]}(${pm[1]})`) };
    });
    functions.push({ name: m[1], params });
  }
  return functions;
}

/** FNV-1a over the table's canonical text: the ABI version both sides carry. */
export function abiHash(table) {
  const text = JSON.stringify(table.map((f) => [f.name, f.params.map((p) => [p.name, p.type, p.fields?.map((x) => [x.name, x.type, x.optional, x.default ?? null]) ?? null])]));
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const isBuffer = (type) => type.startsWith('NativeBuffer');
const structName = (name) => `${name[0].toUpperCase()}${name.slice(1)}Args`;

/** The C++ header: argument structs, their readers, the bodies' declarations, the registration table. */
export function cppHeader(table) {
  const lines = [
    `// Generated by scripts/addon-api.mjs from the CudaNative interface of`,
    `// src-main/engine/tensor/cuda-addon.ts: do not edit (npm run build:native writes it).`,
    '#pragma once',
    '#include "binding.h"',
    '',
    `constexpr uint32_t kAbiVersion = 0x${abiHash(table).toString(16).padStart(8, '0')}u;`,
    '',
    'namespace js {',
  ];
  const fieldsOf = (f) => f.params.flatMap((p) => (p.kind === 'options' ? p.fields.map((x) => ({ ...x, from: p.name })) : [{ name: p.name, type: p.type }]));
  for (const f of table) {
    lines.push(`struct ${structName(f.name)} {`);
    for (const x of fieldsOf(f)) {
      const init = x.default === undefined || x.default === null || x.default === 'null' ? SCALARS[x.type].init : x.default;
      lines.push(`  ${SCALARS[x.type].cpp} ${x.name} = ${init};`);
      // A buffer's JavaScript handle too (a view keeps its allocation's alive).
      if (isBuffer(x.type)) lines.push(`  napi_value ${x.name}Handle = nullptr;`);
    }
    lines.push('};', `napi_value ${f.name}(napi_env env, const ${structName(f.name)}& a);`, '');
  }
  lines.push('}  // namespace js', '', '#ifdef ADDON_REGISTRY', 'namespace addon_registry {', '');
  for (const f of table) {
    lines.push(`napi_value call_${f.name}(napi_env env, napi_callback_info info) {`);
    lines.push('  return guard(env, [&] {');
    lines.push(`    const Arguments in(env, info, ${f.params.length}, "${f.name}");`);
    lines.push(`    js::${structName(f.name)} a;`);
    f.params.forEach((p, i) => {
      if (p.kind === 'scalar') {
        lines.push(`    a.${p.name} = ${SCALARS[p.type].read}(env, in.at(${i}), "${f.name}: ${p.name}");`);
        if (isBuffer(p.type)) lines.push(`    a.${p.name}Handle = in.at(${i});`);
        return;
      }
      lines.push(`    const napi_value o${i} = requireObject(env, in.at(${i}), "${f.name}: ${p.name}");`);
      for (const x of p.fields) {
        const get = `property(env, o${i}, "${x.name}", ${x.optional ? 'true' : 'false'}, "${f.name}")`;
        const read = `${SCALARS[x.type].read}(env, v, "${f.name}: ${x.name}")`;
        const handle = isBuffer(x.type) ? ` a.${x.name}Handle = v;` : '';
        lines.push(`    if (const napi_value v = ${get}) {${handle} a.${x.name} = ${read}; }`);
      }
    });
    lines.push(`    return js::${f.name}(env, a);`, '  });', '}', '');
  }
  lines.push('const AddonFunction kFunctions[] = {');
  for (const f of table) lines.push(`    {"${f.name}", call_${f.name}},`);
  lines.push('};', '', '}  // namespace addon_registry', '#endif', '');
  return lines.join('\n');
}

const STAMP = /export const ADDON_ABI_VERSION = (0x[0-9a-f]+|\d+);/;

/** The stamp in cuda-addon.ts and the hash of its interface. */
export function stampState(source = readFileSync(ADDON_SOURCE, 'utf8')) {
  const m = STAMP.exec(source);
  if (!m) throw new Error(`${ADDON_SOURCE} has no ADDON_ABI_VERSION line`);
  return { stamped: Number(m[1]), hash: abiHash(parseAddonApi(source)) };
}

function main(args) {
  const source = readFileSync(ADDON_SOURCE, 'utf8');
  if (args.includes('--stamp')) {
    const hash = abiHash(parseAddonApi(source));
    writeFileSync(ADDON_SOURCE, source.replace(STAMP, `export const ADDON_ABI_VERSION = 0x${hash.toString(16).padStart(8, '0')};`));
    console.error(`addon-api: ADDON_ABI_VERSION = 0x${hash.toString(16).padStart(8, '0')}`);
  }
  if (args.includes('--check')) {
    const { stamped, hash } = stampState(readFileSync(ADDON_SOURCE, 'utf8'));
    if (stamped !== hash) {
      console.error(`addon-api: ADDON_ABI_VERSION in cuda-addon.ts is stale (the interface hashes to 0x${hash.toString(16)}): run node scripts/addon-api.mjs --stamp`);
      process.exit(1);
    }
  }
  const at = args.indexOf('--header');
  if (at >= 0) {
    const out = args[at + 1];
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, cppHeader(parseAddonApi(readFileSync(ADDON_SOURCE, 'utf8'))));
  }
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) main(process.argv.slice(2));
