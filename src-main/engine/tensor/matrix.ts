// A dense row-major float32 matrix: the unit of data that flows between the quantizer,
// the low-rank solver and the execution backends.
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

export function matrix(rows: number, cols: number, data?: Float32Array): Matrix {
  if (data && data.length !== rows * cols) {
    throw new Error(`matrix data has ${data.length} elements, expected ${rows}x${cols}`);
  }
  return { rows, cols, data: data ?? new Float32Array(rows * cols) };
}

export function frobeniusNorm(data: Float32Array | Float64Array): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i] * data[i];
  return Math.sqrt(s);
}

/** ‖a − b‖_F accumulated in float64. */
export function frobeniusDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return Math.sqrt(s);
}

export function transpose(m: Matrix): Matrix {
  const out = new Float32Array(m.rows * m.cols);
  const { rows, cols, data } = m;
  // Blocked so both reads and writes stay in cache for large matrices.
  const B = 64;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) {
        const row = i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = data[row + j];
      }
    }
  }
  return { rows: cols, cols: rows, data: out };
}
