// The streaming .jsonl scanner against JSON.parse: on thousands of random records (nested
// values, escapes, surrogate pairs, numbers, literals, odd whitespace) fed in chunks of random
// sizes, it yields exactly JSON.parse's field value; on random one-character mutations it fails
// exactly when JSON.parse does (or the record has no usable field), naming the line. And a
// record far larger than a read chunk streams out without ever being held whole.
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../test-support/tiny-model';
import { UserError } from '../errors';
import { Rng } from '../util/random';
import { jsonlFieldFragments, JsonlFieldScanner } from './jsonl-records';
import type { TextPiece } from './text-pieces';

let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-jsonl-scan-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const FIELD = 'text';
const OTHER_KEYS = ['id', 'meta', 'body', 'score', 'tags', 'ü€', ''];
const CHARS = ['a', 'b', ' ', 'é', '€', '\u{1F999}', '"', '\\', '/', '\n', '\t', '\u0001', '\u2028', 'x'.repeat(5)];

function randomString(rng: Rng): string {
  let s = '';
  const n = Math.floor(rng.uniform() * 12);
  for (let i = 0; i < n; i++) s += CHARS[Math.floor(rng.uniform() * CHARS.length)];
  return s;
}

function randomValue(rng: Rng, depth: number): unknown {
  const r = rng.uniform();
  if (depth > 3 || r < 0.25) return randomString(rng);
  if (r < 0.35) return Math.round((rng.uniform() - 0.5) * 1e6) / (rng.uniform() < 0.5 ? 1 : 1000);
  if (r < 0.4) return [true, false, null][Math.floor(rng.uniform() * 3)];
  if (r < 0.55) return Array.from({ length: Math.floor(rng.uniform() * 4) }, () => randomValue(rng, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rng.uniform() * 4); i > 0; i--) o[OTHER_KEYS[Math.floor(rng.uniform() * OTHER_KEYS.length)] + (depth > 0 && rng.uniform() < 0.3 ? FIELD : '')] = randomValue(rng, depth + 1);
  return o;
}

/** JSON text with random JSON whitespace (never a newline) between tokens, and random \u escapes. */
function serialize(v: unknown, rng: Rng): string {
  const ws = () => [' ', '\t', '\r', '', '', ''][Math.floor(rng.uniform() * 6)];
  // Each UTF-16 unit written plainly (as JSON.stringify does) or, at random, as \uXXXX.
  const str = (s: string) => {
    let out = '"';
    for (let i = 0; i < s.length; i++) out += rng.uniform() < 0.15 ? `\\u${s.charCodeAt(i).toString(16).padStart(4, '0')}` : JSON.stringify(s[i]).slice(1, -1);
    return `${out}"`;
  };
  if (typeof v === 'string') return str(v);
  if (Array.isArray(v)) return `[${ws()}${v.map((x) => serialize(x, rng)).join(`${ws()},${ws()}`)}${ws()}]`;
  if (v !== null && typeof v === 'object') return `{${ws()}${Object.entries(v).map(([k, x]) => `${str(k)}${ws()}:${ws()}${serialize(x, rng)}`).join(`${ws()},${ws()}`)}${ws()}}`;
  return JSON.stringify(v);
}

function randomRecord(rng: Rng): string {
  const o = randomValue(rng, 1) as Record<string, unknown>;
  const record: Record<string, unknown> = typeof o === 'object' && o !== null && !Array.isArray(o) ? o : {};
  record[FIELD] = rng.uniform() < 0.85 ? randomString(rng) : null;
  // Field position: wherever insertion order put it, sometimes first.
  const entries = Object.entries(record);
  if (rng.uniform() < 0.3) entries.sort(([a]) => (a === FIELD ? -1 : 1));
  return serialize(Object.fromEntries(entries), rng);
}

/** What JSON.parse says a line gives: its text (null: nothing), or 'error'. */
function expected(line: string): string | null | 'error' {
  if (/^[ \t\r]*$/.test(line)) return null;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'error';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'error';
  const value = (v as Record<string, unknown>)[FIELD];
  if (!(FIELD in (v as object))) return 'error';
  if (value === null) return null;
  if (typeof value !== 'string') return 'error';
  return value === '' ? null : value;
}

/** Scans one line fed in chunks of random sizes: its text (null: nothing) or 'error'. */
function scan(line: string, rng: Rng): { got: string | null | 'error'; message?: string } {
  const scanner = new JsonlFieldScanner('data.jsonl', FIELD);
  const pieces: TextPiece[] = [];
  try {
    for (let i = 0; i < line.length; ) {
      const n = 1 + Math.floor(rng.uniform() * 7);
      pieces.push(...scanner.feed(line.slice(i, i + n)));
      i += n;
    }
    scanner.end();
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return { got: 'error', message: e.message };
  }
  if (pieces.length === 0) return { got: null };
  expect(pieces[0].first).toBe(true);
  expect(pieces.slice(1).every((p) => !p.first)).toBe(true);
  return { got: pieces.map((p) => p.text).join('') };
}

describe('JsonlFieldScanner against JSON.parse', () => {
  it('gives exactly the field of valid records, fed in chunks of any size', () => {
    const rng = new Rng(2023);
    let strings = 0;
    for (let i = 0; i < 3000; i++) {
      const line = randomRecord(rng);
      const want = expected(line);
      expect(want).not.toBe('error');
      const { got, message } = scan(line, rng);
      expect(got, `${line} → ${message}`).toEqual(want);
      if (typeof want === 'string') strings++;
    }
    expect(strings).toBeGreaterThan(1500);
  });

  it('fails exactly where JSON.parse fails (or the field is unusable), one line naming it', () => {
    const rng = new Rng(7);
    const outcomes = { error: 0, ok: 0 };
    const alphabet = ['{', '}', '[', ']', '"', ':', ',', '\\', 'u', '0', '-', '.', 'e', 'n', 't', ' ', 'x', '\u0007'];
    for (let i = 0; i < 4000; i++) {
      let line = randomRecord(rng);
      const at = Math.floor(rng.uniform() * line.length);
      const op = rng.uniform();
      const ch = alphabet[Math.floor(rng.uniform() * alphabet.length)];
      line = op < 0.33 ? line.slice(0, at) + line.slice(at + 1) : op < 0.66 ? line.slice(0, at) + ch + line.slice(at) : line.slice(0, at) + ch + line.slice(at + 1);
      const want = expected(line);
      const { got, message } = scan(line, rng);
      if (want === 'error') {
        expect(got, line).toBe('error');
        expect(message).toMatch(/^data\.jsonl:1: (not valid JSON|not a JSON object|no "text" field|field "text" is not a string)/);
        outcomes.error++;
      } else {
        expect(got, `${line} → ${message}`).toEqual(want);
        outcomes.ok++;
      }
    }
    console.log(`jsonl mutations: ${outcomes.error} refused as JSON.parse refuses them, ${outcomes.ok} read as JSON.parse reads them`);
    expect(outcomes.error).toBeGreaterThan(1000);
    expect(outcomes.ok).toBeGreaterThan(500);
  });

  it('names the line, skips blank ones, refuses a duplicate field and deep nesting', () => {
    const lines = (text: string) => {
      const scanner = new JsonlFieldScanner('d.jsonl', FIELD);
      const out = scanner.feed(text);
      scanner.end();
      return out;
    };
    expect(lines('{"text":"a"}\n\n  \r\n{"text":"b"}').map((p) => p.text)).toEqual(['a', 'b']);
    expect(() => lines('{"text":"a"}\n{"text":"b",\n')).toThrow(/^d\.jsonl:2: not valid JSON/);
    expect(() => lines('{"text":"a","text":"b"}')).toThrow(/d\.jsonl:1: field "text" appears twice/);
    expect(() => lines(`{"a":${'['.repeat(300)}`)).toThrow(/nested more than 256 levels/);
    expect(() => lines('{"body":"x","id":1}')).toThrow(/d\.jsonl:1: no "text" field \(fields: body, id\)/);
  });
});

describe('a record larger than a read chunk', () => {
  it('streams its field out in fragments before the line has been read', async () => {
    const path = join(tmp, 'big.jsonl');
    const value = 'word '.repeat(2_000_000); // 10 MB
    await writeFile(path, `${JSON.stringify({ id: 1, text: value, tail: 'x' })}\n${JSON.stringify({ text: 'next' })}\n`);
    const counter = { bytesRead: 0 };
    const it = jsonlFieldFragments(path, 'text', counter)[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toMatchObject({ first: true });
    expect(counter.bytesRead).toBeLessThanOrEqual(1 << 16);
    let text = (first.value as TextPiece).text;
    let fragments = 1;
    let longest = text.length;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      if (r.value.first) {
        expect(r.value.text).toBe('next');
        break;
      }
      text += r.value.text;
      longest = Math.max(longest, r.value.text.length);
      fragments++;
    }
    expect(text).toBe(value);
    expect(fragments).toBeGreaterThan(100);
    expect(longest).toBeLessThanOrEqual(1 << 16);
  });
});
