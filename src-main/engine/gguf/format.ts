// GGUF (version 3), the container llama.cpp loads: a header of typed key/value metadata and
// tensor descriptions, then the tensors' bytes, each at an aligned offset. These are the
// numbers of the format (value types, ggml tensor types and their block layouts).

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
/** Where tensor data is placed unless `general.alignment` says otherwise. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value types, as numbered in the file. */
export const VALUE_TYPE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;
export type ScalarType = Exclude<keyof typeof VALUE_TYPE, 'array'>;

/** ggml tensor types written here. */
export const GGML_TYPE = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  BF16: 30,
} as const;
export type GgmlType = keyof typeof GGML_TYPE;

/** Elements per block and bytes per block of each type (float types: blocks of one). */
export const GGML_BLOCK: Record<GgmlType, { elements: number; bytes: number }> = {
  F32: { elements: 1, bytes: 4 },
  F16: { elements: 1, bytes: 2 },
  BF16: { elements: 1, bytes: 2 },
  Q4_0: { elements: 32, bytes: 2 + 16 },
  Q4_1: { elements: 32, bytes: 2 + 2 + 16 },
  Q5_0: { elements: 32, bytes: 2 + 4 + 16 },
  Q5_1: { elements: 32, bytes: 2 + 2 + 4 + 16 },
  Q8_0: { elements: 32, bytes: 2 + 32 },
};

export function ggmlTypeName(id: number): GgmlType | undefined {
  return (Object.keys(GGML_TYPE) as GgmlType[]).find((k) => GGML_TYPE[k] === id);
}

/**
 * Bytes of a tensor of `type` with ggml dimensions `ne` (ne[0] varies fastest: for a weight
 * matrix [out, in] that is [in, out]). Rows are whole blocks, so ne[0] must be a multiple of
 * the block size.
 */
export function ggmlTensorBytes(type: GgmlType, ne: readonly number[]): number {
  const { elements, bytes } = GGML_BLOCK[type];
  const row = ne[0] ?? 1;
  if (row % elements !== 0) throw new Error(`a ${type} row needs a multiple of ${elements} elements, got ${row}`);
  let n = (row / elements) * bytes;
  for (let i = 1; i < ne.length; i++) n *= ne[i];
  return n;
}

/**
 * llama.cpp's file types (general.file_type): which type most weights have. Only the values
 * this exporter writes.
 */
export const LLAMA_FILE_TYPE: Partial<Record<GgmlType, number>> = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q8_0: 7,
  Q5_0: 8,
  Q5_1: 9,
  BF16: 32,
};

/** tokenizer.ggml.token_type values. */
export const TOKEN_TYPE = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;
