// The reverse walk over the decoder layers, the one backward loop of every backend: the
// forward keeps each layer's input x (one [rows, hidden] value per layer: the activations
// inside a layer are recomputed by its backward), the head gives the loss and ∂L/∂(last
// hidden states), then each layer's backward, last to first, turns ∂L/∂y into ∂L/∂x. A value
// is released as soon as the walk is done with it; a cancelled job stops between layers.
import { CancelledError } from '../errors';
import { forwardLayers } from './forward';

export interface LayerPasses<X> {
  forward(layer: number, x: X): Promise<X> | X;
  /** ∂L/∂x of the layer given its input x and ∂L/∂y (the backend keeps the parameter gradients). */
  backward(layer: number, x: X, dy: X): Promise<X> | X;
  /** Frees a value the walk is done with (device memory; host memory is the collector's). */
  release(x: X): void;
}

/**
 * ∂L/∂x0 through `layers` layers from the embedded input x0, and the head's result: `head`
 * maps the last hidden states to the loss and ∂L/∂(them) (`dx`). Every value but the returned
 * ∂L/∂x0 is released, on failure too.
 */
export async function backpropagate<X, H extends { dx: X }>(
  layers: number,
  x0: X,
  passes: LayerPasses<X>,
  head: (x: X) => Promise<H> | H,
  signal?: AbortSignal,
): Promise<{ dx: X; head: H }> {
  const inputs: Array<X | undefined> = [];
  let dy: X | undefined;
  try {
    const last = await forwardLayers(layers, x0, (l, x) => passes.forward(l, x), { signal, onInput: (_, x) => void inputs.push(x) });
    let h: H;
    try {
      h = await head(last);
    } finally {
      passes.release(last);
    }
    dy = h.dx;
    for (let l = layers - 1; l >= 0; l--) {
      if (signal?.aborted) throw new CancelledError();
      const x = inputs[l]!;
      const dx = await passes.backward(l, x, dy);
      passes.release(dy);
      dy = dx;
      passes.release(x);
      inputs[l] = undefined;
    }
    const dx = dy;
    dy = undefined;
    return { dx, head: h };
  } finally {
    for (const x of inputs) if (x !== undefined) passes.release(x);
    if (dy !== undefined) passes.release(dy);
  }
}
