// Text datasets on disk (.txt, .jsonl, .parquet) streamed as documents, and a document stream
// turned into one token stream (for perplexity and calibration).
//
// Documents:
//   .txt      the whole file is one text (as the usual perplexity protocol reads a corpus),
//             streamed in pieces cut where tokenization does not change (text-pieces.ts).
//   .jsonl    one JSON object per line, the `field` value ("text" by default); blank lines are
//             skipped, a null value counts as empty.
//   .parquet  the non-null values of the string column `field` ("text" by default).
// Whitespace-only documents are skipped everywhere.
import { extname } from 'node:path';
import { UserError } from '../errors';
import { readLines, type ReadCounter } from './lines';
import { readParquetColumn } from './parquet-text';
import { readTextPieces } from './text-pieces';
import type { TextTokenizer } from './tokenizer';

export const DATASET_EXTENSIONS = ['.txt', '.jsonl', '.parquet'] as const;
export type DatasetFormat = 'txt' | 'jsonl' | 'parquet';

export interface TextDataset extends AsyncIterable<string> {
  readonly path: string;
  readonly format: DatasetFormat;
  /** Bytes read from disk by the latest iteration so far (progress). */
  readonly bytesRead: number;
  /** The items are pieces of one text (.txt), not separate documents. */
  readonly continuous: boolean;
}

const DEFAULT_FIELD = 'text';

/** Checks the extension now; the file itself is opened (and its errors raised) on iteration. */
export function openTextDataset(path: string, opts: { field?: string } = {}): TextDataset {
  const ext = extname(path).toLowerCase();
  const format = ext.slice(1) as DatasetFormat;
  if (!(DATASET_EXTENSIONS as readonly string[]).includes(ext)) {
    throw new UserError(`${path}: unsupported dataset type "${ext}" (supported: ${DATASET_EXTENSIONS.join(', ')})`);
  }
  if (opts.field !== undefined && format === 'txt') {
    throw new UserError(`${path}: a field applies only to .jsonl and .parquet datasets`);
  }
  const field = opts.field ?? DEFAULT_FIELD;
  const counter: ReadCounter = { bytesRead: 0 };
  return {
    path,
    format,
    continuous: format === 'txt',
    get bytesRead() {
      return counter.bytesRead;
    },
    [Symbol.asyncIterator]() {
      counter.bytesRead = 0;
      if (format === 'txt') return readTextPieces(path, counter);
      const docs = format === 'jsonl' ? jsonlDocuments(path, field, counter) : readParquetColumn(path, field, counter);
      return skipBlank(docs);
    },
  };
}

async function* skipBlank(docs: AsyncIterable<string>): AsyncGenerator<string> {
  for await (const d of docs) if (/\S/.test(d)) yield d;
}

async function* jsonlDocuments(path: string, field: string, counter: ReadCounter): AsyncGenerator<string> {
  let lineNo = 0;
  for await (const line of readLines(path, counter)) {
    lineNo++;
    if (!/\S/.test(line)) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new UserError(`${path}:${lineNo}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new UserError(`${path}:${lineNo}: not a JSON object`);
    }
    const record = obj as Record<string, unknown>;
    if (!(field in record)) {
      throw new UserError(`${path}:${lineNo}: no "${field}" field (fields: ${Object.keys(record).join(', ') || 'none'})`);
    }
    const value = record[field];
    if (value === null) continue;
    if (typeof value !== 'string') throw new UserError(`${path}:${lineNo}: field "${field}" is not a string`);
    yield value;
  }
}

export interface ReadTokensOptions {
  /** Stop after this many tokens (the last document is cut). */
  maxTokens?: number;
  /** 'eos': an EOS token between documents when the tokenizer has one; 'none': ids abut. */
  separator: 'eos' | 'none';
}

/**
 * Tokenizes the documents into one stream, without BOS (callers that cut the stream into
 * windows add BOS per window). Stops reading the dataset once maxTokens is reached.
 */
export async function readTokens(dataset: TextDataset, tokenizer: TextTokenizer, opts: ReadTokensOptions): Promise<Int32Array> {
  const max = opts.maxTokens ?? Infinity;
  if (max !== Infinity && (!Number.isSafeInteger(max) || max < 1)) {
    throw new UserError(`maxTokens must be a positive integer (got ${max})`);
  }
  const sep = opts.separator === 'eos' ? tokenizer.eosId : null;
  let out = new Int32Array(1 << 16);
  let n = 0;
  let docs = 0;
  let textTokens = 0;
  const push = (ids: ArrayLike<number>) => {
    if (n + ids.length > out.length) {
      let cap = out.length * 2;
      while (cap < n + ids.length) cap *= 2;
      const grown = new Int32Array(cap);
      grown.set(out.subarray(0, n));
      out = grown;
    }
    out.set(ids, n);
    n += ids.length;
  };
  let sawText = false;
  for await (const doc of dataset) {
    sawText ||= /\S/.test(doc);
    if (docs > 0 && sep !== null && !dataset.continuous) push([sep]);
    const ids = docs > 0 && dataset.continuous ? tokenizer.encodeContinuation(doc) : tokenizer.encode(doc, { addBos: false });
    push(ids);
    textTokens += ids.length;
    docs++;
    if (n >= max) break;
  }
  if (!sawText) throw new UserError(`${dataset.path}: no text found`);
  if (textTokens === 0) throw new UserError(`${dataset.path}: the text produced no tokens`);
  return out.slice(0, Math.min(n, max));
}
