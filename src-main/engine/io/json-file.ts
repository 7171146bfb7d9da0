// Reading a JSON file with one-line UserErrors naming it (missing, unreadable, not JSON, too
// large, nested too deep). Only regular files are read, and only up to a size cap checked
// before reading; nesting is bounded before parsing, so nothing later recurses without end.
import { lstat } from 'node:fs/promises';
import { UserError } from '../errors';
import { errnoCode, fsError, openRegularFile, readFully } from './fs-util';

/** Default cap of a JSON file's size (config, run files); tokenizer.json asks for more. */
export const MAX_JSON_BYTES = 64 * 2 ** 20;
/** Deepest nesting accepted (real configs, tokenizers and run files stay under 20). */
export const MAX_JSON_DEPTH = 256;

/** The deepest [ / { nesting of JSON text, outside strings (a linear scan, no recursion). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Parses JSON text after bounding its nesting; `what` names it in errors. */
export function parseJsonText(text: string, what: string, maxDepth = MAX_JSON_DEPTH): unknown {
  const depth = jsonDepth(text);
  if (depth > maxDepth) throw new UserError(`${what}: JSON nested ${depth} levels deep (at most ${maxDepth})`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${what}: not valid JSON (${(e as Error).message.replace(/\s+/g, ' ').slice(0, 200)})`);
  }
}

export interface ReadJsonOptions {
  /** Null when the file does not exist. */
  optional?: boolean;
  /** Size cap in bytes (default MAX_JSON_BYTES). */
  maxBytes?: number;
}

/** A regular file's UTF-8 text, refused before reading when larger than maxBytes. */
export async function readTextFile(path: string, maxBytes: number): Promise<string> {
  const fh = await openRegularFile(path);
  try {
    const size = (await fh.stat()).size;
    if (size > maxBytes) throw new UserError(`${path} is ${size} bytes, over the ${maxBytes}-byte limit for this file`);
    const buf = new Uint8Array(size);
    await readFully(fh, buf, 0, path, 'the file');
    return new TextDecoder('utf-8').decode(buf);
  } finally {
    await fh.close();
  }
}

export type JsonObject = Record<string, unknown>;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The parsed file; with `optional`, null when the file does not exist. */
export async function readJson(path: string, options: ReadJsonOptions = {}): Promise<unknown> {
  if (options.optional) {
    try {
      await lstat(path);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return null;
      throw fsError(e, path, 'read');
    }
  }
  const text = await readTextFile(path, options.maxBytes ?? MAX_JSON_BYTES);
  return parseJsonText(text, path);
}

/** Like readJson, and the top level must be an object. */
export async function readJsonObject(path: string, options: ReadJsonOptions = {}): Promise<JsonObject | null> {
  const raw = await readJson(path, options);
  if (raw === null && options.optional) return null;
  if (!isJsonObject(raw)) throw new UserError(`${path}: not a JSON object`);
  return raw;
}
