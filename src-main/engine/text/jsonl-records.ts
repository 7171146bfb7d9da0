// The `field` strings of a .jsonl file, streamed: each line is scanned as JSON character by
// character (a full validating scanner, one pass, no recursion) and the field's string value
// comes out in fragments as its characters go by, so neither a line nor a value is ever held
// whole: a 40 MB record costs what one read chunk does. Lines are checked as JSON.parse would
// check them, with the same kind of one-line errors naming the file and line.
import { UserError } from '../errors';
import { MAX_JSON_DEPTH } from '../io/json-file';
import { readTextChunks, type ReadCounter } from './text-chunks';
import type { TextPiece } from './text-pieces';

/** What the scanner expects next. */
const enum Want {
  /** Start of a line: whitespace, or the record's `{`. */
  Record,
  Value,
  /** After `{`: a key or `}`. */
  KeyOrEnd,
  /** After `,` in an object. */
  Key,
  Colon,
  /** After a value inside a container: `,` or its closing bracket. */
  CommaOrEnd,
  /** After `[`: a value or `]`. */
  ValueOrEnd,
  /** After the record's closing `}`: only whitespace until the end of the line. */
  LineEnd,
  String,
  Number,
  Literal,
}

const WHITESPACE = new Set([0x20, 0x09, 0x0d]);
const LITERALS = ['true', 'false', 'null'];
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const NUMBER_CHAR = /[-+.eE0-9]/;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
/** Key names kept for the "no such field" message. */
const KEYS_NAMED = 20;
/** A number or key longer than this is refused (JSON allows it; no dataset needs it). */
const MAX_TOKEN_CHARS = 1 << 16;

/**
 * Scans .jsonl text fed in chunks of any size; `feed` returns the field's string fragments
 * found in the chunk (`first` on a record's first one). Records whose field is null or empty
 * give none.
 */
export class JsonlFieldScanner {
  private want = Want.Record;
  /** Open containers, innermost last: `{` or `[`. */
  private stack: number[] = [];
  private line = 1;
  /** In a string: whether it is a key, the field's value, or another value. */
  private stringRole: 'key' | 'field' | 'other' = 'other';
  private escape: string | null = null;
  /** The current key (capped), the current number or literal. */
  private token = '';
  private keyIsField = false;
  private valueIsField = false;
  private fieldSeen = false;
  private fieldStarted = false;
  private keys: string[] = [];

  constructor(
    private readonly path: string,
    private readonly field: string,
  ) {}

  private fail(what: string): never {
    throw new UserError(`${this.path}:${this.line}: ${what}`);
  }

  feed(text: string): TextPiece[] {
    const out: TextPiece[] = [];
    // The field's value in this chunk: runs of plain characters (slices) and decoded escapes.
    let runStart = -1;
    let pieces: string[] = [];
    const flushRun = (end: number) => {
      if (runStart >= 0 && end > runStart) pieces.push(text.slice(runStart, end));
      runStart = -1;
    };
    const emit = () => {
      const value = pieces.join('');
      pieces = [];
      if (value.length === 0) return;
      out.push({ text: value, first: !this.fieldStarted });
      this.fieldStarted = true;
    };
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.want === Want.String) {
        if (this.escape !== null) {
          this.escape += text[i];
          const decoded = this.decodeEscape();
          if (decoded !== null) this.appendString(decoded, pieces);
        } else if (c === 0x22) {
          if (this.stringRole === 'field') {
            flushRun(i);
            emit();
          }
          this.endString();
        } else if (c === 0x5c) {
          if (this.stringRole === 'field') flushRun(i);
          this.escape = '';
        } else if (c < 0x20) {
          this.fail(c === 0x0a ? 'not valid JSON (a string runs past the end of the line)' : 'not valid JSON (a control character inside a string)');
        } else if (this.stringRole === 'field') {
          if (runStart < 0) runStart = i;
        } else if (this.stringRole === 'key') {
          this.appendString(text[i], pieces);
        }
        continue;
      }
      if (this.want === Want.Number) {
        if (NUMBER_CHAR.test(text[i])) {
          this.token += text[i];
          if (this.token.length > MAX_TOKEN_CHARS) this.fail('not valid JSON (a number thousands of digits long)');
          continue;
        }
        if (!NUMBER.test(this.token)) this.fail(`not valid JSON (bad number ${JSON.stringify(this.token.slice(0, 40))})`);
        this.endValue();
      } else if (this.want === Want.Literal) {
        if (c >= 0x61 && c <= 0x7a) {
          this.token += text[i];
          if (!LITERALS.some((l) => l.startsWith(this.token))) this.fail(`not valid JSON (unexpected ${JSON.stringify(this.token)})`);
          continue;
        }
        if (!LITERALS.includes(this.token)) this.fail(`not valid JSON (unexpected ${JSON.stringify(this.token)})`);
        this.endValue();
      }
      // Structure: c is not inside a string, number or literal.
      if (c === 0x0a) this.endLine();
      else if (!WHITESPACE.has(c)) this.structural(c, text[i]);
    }
    // The chunk ends inside the field's value: what it held goes out now.
    flushRun(text.length);
    emit();
    return out;
  }

  /** The end of the file: a last line without its newline is a line too. */
  end(): void {
    if (this.want !== Want.Record && this.want !== Want.LineEnd) this.fail('not valid JSON (the file ends inside the record)');
  }

  private structural(c: number, ch: string): void {
    switch (this.want) {
      case Want.Record:
        if (c !== 0x7b) this.fail(/["\d[\-tfn]/.test(ch) ? 'not a JSON object' : `not valid JSON (unexpected ${JSON.stringify(ch)})`);
        this.open(c);
        this.want = Want.KeyOrEnd;
        return;
      case Want.KeyOrEnd:
      case Want.Key:
        if (c === 0x22) {
          this.startString('key');
          return;
        }
        if (c === 0x7d && this.want === Want.KeyOrEnd) {
          this.close(c);
          return;
        }
        return this.fail(`not valid JSON (expected a key, found ${JSON.stringify(ch)})`);
      case Want.Colon:
        if (c !== 0x3a) this.fail(`not valid JSON (expected ':', found ${JSON.stringify(ch)})`);
        this.want = Want.Value;
        return;
      case Want.CommaOrEnd:
        if (c === 0x2c) {
          this.want = this.stack[this.stack.length - 1] === 0x7b ? Want.Key : Want.Value;
          return;
        }
        if (c === 0x7d || c === 0x5d) {
          this.close(c);
          return;
        }
        return this.fail(`not valid JSON (expected ',' or a closing bracket, found ${JSON.stringify(ch)})`);
      case Want.ValueOrEnd:
        if (c === 0x5d) {
          this.close(c);
          return;
        }
        return this.value(c, ch);
      case Want.Value:
        return this.value(c, ch);
      case Want.LineEnd:
        return this.fail(`not valid JSON (unexpected ${JSON.stringify(ch)} after the record)`);
      default:
        return this.fail(`not valid JSON (unexpected ${JSON.stringify(ch)})`);
    }
  }

  private value(c: number, ch: string): void {
    const isField = this.valueIsField;
    this.valueIsField = false;
    if (isField && c !== 0x22 && ch !== 'n') this.fail(`field "${this.field}" is not a string`);
    if (c === 0x22) this.startString(isField ? 'field' : 'other');
    else if (c === 0x7b || c === 0x5b) {
      this.open(c);
      this.want = c === 0x7b ? Want.KeyOrEnd : Want.ValueOrEnd;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      this.token = ch;
      this.want = Want.Number;
    } else if (ch === 't' || ch === 'f' || ch === 'n') {
      this.token = ch;
      this.want = Want.Literal;
      // A null field is an empty document; anything but "null" fails as invalid JSON.
    } else this.fail(`not valid JSON (unexpected ${JSON.stringify(ch)})`);
  }

  private open(c: number): void {
    if (this.stack.length >= MAX_JSON_DEPTH) this.fail(`JSON nested more than ${MAX_JSON_DEPTH} levels deep`);
    this.stack.push(c);
  }

  private close(c: number): void {
    const top = this.stack.pop();
    if ((top === 0x7b) !== (c === 0x7d)) this.fail(`not valid JSON (unexpected ${String.fromCharCode(c)})`);
    if (this.stack.length === 0) {
      if (!this.fieldSeen) this.fail(`no "${this.field}" field (fields: ${this.keys.join(', ') || 'none'})`);
      this.want = Want.LineEnd;
    } else this.endValue();
  }

  private startString(role: 'key' | 'field' | 'other'): void {
    this.stringRole = role;
    this.want = Want.String;
    this.token = '';
  }

  private appendString(s: string, pieces: string[]): void {
    if (this.stringRole === 'field') pieces.push(s);
    else if (this.stringRole === 'key' && this.token.length <= MAX_TOKEN_CHARS) this.token += s;
  }

  /** The escape so far; its character once complete (null while a \uXXXX is incomplete). */
  private decodeEscape(): string | null {
    const e = this.escape as string;
    if (e[0] === 'u') {
      if (e.length < 5) {
        if (!/^[0-9a-fA-F]$/.test(e[e.length - 1]) && e.length > 1) this.fail('not valid JSON (bad \\u escape)');
        return null;
      }
      if (!/^u[0-9a-fA-F]{4}$/.test(e)) this.fail('not valid JSON (bad \\u escape)');
      this.escape = null;
      return String.fromCharCode(parseInt(e.slice(1), 16));
    }
    const decoded = ESCAPES[e];
    if (decoded === undefined) this.fail(`not valid JSON (bad escape \\${e})`);
    this.escape = null;
    return decoded;
  }

  private endString(): void {
    const role = this.stringRole;
    if (role === 'key') {
      const depthOne = this.stack.length === 1;
      this.keyIsField = depthOne && this.token === this.field;
      if (depthOne && this.keys.length < KEYS_NAMED) this.keys.push(this.token.length > 40 ? `${this.token.slice(0, 40)}…` : this.token);
      if (this.keyIsField) {
        if (this.fieldSeen) this.fail(`field "${this.field}" appears twice`);
        this.fieldSeen = true;
        this.valueIsField = true;
      }
      this.want = Want.Colon;
      return;
    }
    this.endValue();
  }

  /** A value ended inside a container. */
  private endValue(): void {
    this.token = '';
    this.stringRole = 'other';
    this.want = Want.CommaOrEnd;
  }

  private endLine(): void {
    if (this.want !== Want.Record && this.want !== Want.LineEnd) this.fail('not valid JSON (the line ends inside the record)');
    this.line++;
    this.want = Want.Record;
    this.stack = [];
    this.fieldSeen = false;
    this.fieldStarted = false;
    this.keys = [];
  }
}

/** The field's fragments of every record of a .jsonl file (records without text give none). */
export async function* jsonlFieldFragments(path: string, field: string, counter: ReadCounter): AsyncGenerator<TextPiece> {
  const scanner = new JsonlFieldScanner(path, field);
  for await (const text of readTextChunks(path, counter)) yield* scanner.feed(text);
  scanner.end();
}
