// Text datasets on disk (.txt, .jsonl, .parquet) streamed as pieces of documents, and turned
// into one token stream (for perplexity, calibration and training). Whatever the file holds,
// nothing is ever held or tokenized whole: files are read in chunks, .jsonl records scanned as
// they stream by (jsonl-records.ts), every document cut into bounded pieces (text-pieces.ts),
// and reading stops once the tokens asked for are there.
//
// Documents:
//   .txt      the whole file is one text (as the usual perplexity protocol reads a corpus).
//   .jsonl    one JSON object per line, the `field` value ("text" by default); blank lines are
//             skipped, a null value counts as empty.
//   .parquet  the non-null values of the string column `field` ("text" by default).
// Whitespace-only documents are skipped everywhere.
import { extname } from 'node:path';
import { CancelledError, UserError } from '../errors';
import { jsonlFieldFragments } from './jsonl-records';
import { readParquetColumn } from './parquet-text';
import { readTextChunks, type ReadCounter } from './text-chunks';
import { cutPieces, type TextPiece } from './text-pieces';
import type { TextTokenizer } from './tokenizer';

export const DATASET_EXTENSIONS = ['.txt', '.jsonl', '.parquet'] as const;
export type DatasetFormat = 'txt' | 'jsonl' | 'parquet';

/** The pieces of the dataset's documents, in order (`first` starts a document). */
export interface TextDataset extends AsyncIterable<TextPiece> {
  readonly path: string;
  readonly format: DatasetFormat;
  /** Bytes read from disk by the latest iteration so far (progress). */
  readonly bytesRead: number;
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
    get bytesRead() {
      return counter.bytesRead;
    },
    [Symbol.asyncIterator]() {
      counter.bytesRead = 0;
      const fragments = format === 'txt' ? oneDocument(readTextChunks(path, counter)) : format === 'jsonl' ? jsonlFieldFragments(path, field, counter) : documents(readParquetColumn(path, field, counter));
      return cutPieces(fragments);
    },
  };
}

/** A text read in chunks as the fragments of one document. */
async function* oneDocument(chunks: AsyncIterable<string>): AsyncGenerator<TextPiece> {
  let first = true;
  for await (const text of chunks) {
    yield { text, first };
    first = false;
  }
}

/** Whole values as documents (empty ones give nothing). */
async function* documents(values: AsyncIterable<string>): AsyncGenerator<TextPiece> {
  for await (const text of values) if (text.length > 0) yield { text, first: true };
}

export interface ReadTokensOptions {
  /** Stop after this many tokens (the last document is cut). */
  maxTokens?: number;
  /** 'eos': an EOS token between documents when the tokenizer has one; 'none': ids abut. */
  separator: 'eos' | 'none';
  signal?: AbortSignal;
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
  // The stream as the pieces' arrays, joined once at the end: the peak is twice the tokens,
  // never the three times of a doubling buffer.
  const parts: Int32Array[] = [];
  let n = 0;
  const push = (ids: Int32Array) => {
    parts.push(ids);
    n += ids.length;
  };
  /** Takes back the stream's tail after `at` tokens (a whitespace-only document). */
  const truncate = (at: number) => {
    while (n > at) {
      const last = parts[parts.length - 1];
      if (n - last.length >= at) {
        parts.pop();
        n -= last.length;
      } else {
        parts[parts.length - 1] = last.subarray(0, last.length - (n - at));
        n = at;
      }
    }
  };
  let docs = 0;
  let sawText = false;
  let textTokens = 0;
  // The current document: where its tokens begin, and how many it has (a whitespace-only one is taken back).
  let docStart = 0;
  let docTokens = 0;
  let docHasText = false;
  let started = false;
  const endDocument = () => {
    if (docHasText) docs++;
    else {
      truncate(docStart);
      textTokens -= docTokens;
    }
  };
  for await (const piece of dataset) {
    if (opts.signal?.aborted) throw new CancelledError();
    if (piece.first) {
      if (started) endDocument();
      started = true;
      docStart = n;
      docTokens = 0;
      docHasText = false;
      if (docs > 0 && sep !== null) push(Int32Array.of(sep));
    }
    const hasText = /\S/.test(piece.text);
    sawText ||= hasText;
    docHasText ||= hasText;
    const ids = await (piece.first ? tokenizer.encode(piece.text, { addBos: false, signal: opts.signal }) : tokenizer.encodeContinuation(piece.text, opts.signal));
    push(ids);
    docTokens += ids.length;
    textTokens += ids.length;
    // A document that is only whitespace so far may yet be taken back: read on.
    if (n >= max && docHasText) break;
  }
  if (started) endDocument();
  if (!sawText) throw new UserError(`${dataset.path}: no text found`);
  if (textTokens === 0) throw new UserError(`${dataset.path}: the text produced no tokens`);
  const out = new Int32Array(Math.min(n, max));
  let at = 0;
  for (const part of parts) {
    if (at >= out.length) break;
    const take = part.subarray(0, out.length - at);
    out.set(take, at);
    at += take.length;
  }
  return out;
}
