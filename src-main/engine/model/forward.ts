// The walk through the decoder layers, the one forward loop every backend and the gradient
// pass share: each layer's output is the next one's input; `onInput` sees every layer's
// input before the layer runs (backprop keeps them), and a cancelled job stops between layers.
import { CancelledError } from '../errors';

export interface ForwardOptions<X> {
  signal?: AbortSignal;
  onInput?: (layer: number, x: X) => void;
  /** Called with a layer's input once its output exists (a device frees it here). */
  onDone?: (layer: number, x: X) => void;
}

export async function forwardLayers<X>(layers: number, x: X, run: (layer: number, x: X) => Promise<X> | X, options: ForwardOptions<X> = {}): Promise<X> {
  for (let l = 0; l < layers; l++) {
    if (options.signal?.aborted) throw new CancelledError();
    options.onInput?.(l, x);
    const y = await run(l, x);
    options.onDone?.(l, x);
    x = y;
  }
  return x;
}
