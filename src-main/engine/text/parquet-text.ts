// One string column of a .parquet file, read row group by row group through hyparquet over a
// file handle, so only the footer and one group's column chunk are in memory at a time.
import type { FileHandle } from 'node:fs/promises';
import { parquetMetadataAsync, parquetRead, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { UserError, isUserError } from '../errors';
import { fsError, openRegularFile, readFully } from '../io/fs-util';
import type { ReadCounter } from './text-chunks';

// The footer is fetched in one read of this size (hyparquet reads more when it is bigger).
const FOOTER_FETCH = 1 << 16;

function fileBuffer(fh: FileHandle, size: number, path: string, counter: ReadCounter): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end = size): Promise<ArrayBuffer> {
      const bytes = new Uint8Array(Math.max(0, end - start));
      await readFully(fh, bytes, start, path, 'a parquet read');
      counter.bytesRead += bytes.length;
      return bytes.buffer;
    },
  };
}

/** The non-null values of top-level string column `field`, in row order. */
export async function* readParquetColumn(path: string, field: string, counter: ReadCounter): AsyncGenerator<string> {
  let fh: FileHandle;
  let size: number;
  try {
    fh = await openRegularFile(path);
    size = (await fh.stat()).size;
  } catch (e) {
    throw fsError(e, path, 'read');
  }
  try {
    const file = fileBuffer(fh, size, path, counter);
    let metadata: FileMetaData;
    try {
      metadata = await parquetMetadataAsync(file, { initialFetchSize: FOOTER_FETCH });
    } catch (e) {
      if (isUserError(e)) throw e;
      throw new UserError(`${path}: not a readable parquet file (${(e as Error).message})`);
    }
    checkColumn(metadata, field, path);

    let rowStart = 0;
    for (let g = 0; g < metadata.row_groups.length; g++) {
      const rowEnd = rowStart + Number(metadata.row_groups[g].num_rows);
      let rows: unknown[][] = [];
      try {
        await parquetRead({
          file,
          metadata,
          columns: [field],
          rowStart,
          rowEnd,
          compressors,
          onComplete: (r) => {
            rows = r;
          },
        });
      } catch (e) {
        if (isUserError(e)) throw e;
        throw new UserError(`${path}: cannot read row group ${g} of column "${field}" (${(e as Error).message})`);
      }
      for (const [value] of rows) {
        if (value === null || value === undefined) continue;
        if (typeof value !== 'string') throw new UserError(`${path}: column "${field}" holds non-text values`);
        yield value;
      }
      rowStart = rowEnd;
    }
  } finally {
    await fh.close();
  }
}

function checkColumn(metadata: FileMetaData, field: string, path: string): void {
  const columns = parquetSchema(metadata).children;
  const col = columns.find((c) => c.element.name === field);
  if (!col) {
    const names = columns.map((c) => c.element.name).join(', ');
    throw new UserError(`${path}: no column "${field}" (columns: ${names || 'none'})`);
  }
  const type = col.element.type;
  // BYTE_ARRAY is text (annotated STRING, or unannotated, which hyparquet decodes as UTF-8).
  if (col.children.length > 0 || type !== 'BYTE_ARRAY') {
    throw new UserError(`${path}: column "${field}" is not a text column (it is ${type ?? 'nested'})`);
  }
}
