// How many bits a quantized matrix takes per weight: its codes plus one scale per block of the
// row-major flattened matrix (the engine's float32 absmax, llama.cpp's fp16 d), and, where a
// budget counts it, the float32 LoRA adapter (r·(out + in) values). The run's summary, the
// Quantize view's estimate and the planner's budget all count this way. Pure.

/** Bits of one block scale: 16 for llama.cpp's formats (quant 'ggml'), else 32. */
export function scaleBitsOf(quant: string): number {
  return quant === 'ggml' ? 16 : 32;
}

/** Bits one [out, in] matrix takes quantized: codes and block scales (and its adapter at `rank`, float32). */
export function storedBits(shape: readonly [number, number], bits: number, block: number, scaleBits: number, rank = 0): number {
  const n = shape[0] * shape[1];
  return n * bits + Math.ceil(n / block) * scaleBits + rank * (shape[0] + shape[1]) * 32;
}

/** Mean stored bits per target weight (NaN for no targets); `rank` > 0 counts the adapter too. */
export function averageBits(shapes: readonly (readonly [number, number])[], bits: readonly number[], block: number, scaleBits: number, rank = 0): number {
  let params = 0;
  let stored = 0;
  shapes.forEach((shape, k) => {
    params += shape[0] * shape[1];
    stored += storedBits(shape, bits[k], block, scaleBits, rank);
  });
  return params > 0 ? stored / params : NaN;
}
