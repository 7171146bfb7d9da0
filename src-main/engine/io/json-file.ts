// Reading a JSON file with one-line UserErrors naming it (missing, unreadable, not JSON).
import { readFile } from 'node:fs/promises';
import { UserError } from '../errors';
import { errnoCode, fsError } from './fs-util';

export type JsonObject = Record<string, unknown>;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The parsed file; with `optional`, null when the file does not exist. */
export async function readJson(path: string, options: { optional?: boolean } = {}): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (options.optional && errnoCode(e) === 'ENOENT') return null;
    throw fsError(e, path, 'read');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message.replace(/\s+/g, ' ')})`);
  }
}

/** Like readJson, and the top level must be an object. */
export async function readJsonObject(path: string, options: { optional?: boolean } = {}): Promise<JsonObject | null> {
  const raw = await readJson(path, options);
  if (raw === null && options.optional) return null;
  if (!isJsonObject(raw)) throw new UserError(`${path}: not a JSON object`);
  return raw;
}
