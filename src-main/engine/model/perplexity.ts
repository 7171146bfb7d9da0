// Sliding-window perplexity, the standard protocol: windows of seqLen tokens starting every
// stride tokens; each window scores only the tokens the previous window did not (so every
// token after the first is counted exactly once, with up to seqLen − 1 tokens of context).
import { CancelledError, UserError } from '../errors';
import type { Transformer } from './transformer';

export interface PerplexityOptions {
  seqLen: number;
  stride: number;
  signal?: AbortSignal;
  onProgress?: (scoredTokens: number, totalTokens: number) => void;
}

export interface PerplexityResult {
  ppl: number;
  /** Σ −log p over the scored tokens (natural log). */
  nll_sum: number;
  /** Tokens scored: N − 1 for N tokens. */
  tokens: number;
  windows: number;
  seconds: number;
}

export function checkWindow(seqLen: number, stride: number, maxPositions: number): void {
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new UserError(`--seq-len must be an integer ≥ 2, got ${seqLen}`);
  if (seqLen > maxPositions) throw new UserError(`--seq-len ${seqLen} exceeds the model's max_position_embeddings ${maxPositions}`);
  if (!Number.isInteger(stride) || stride < 1 || stride > seqLen) throw new UserError(`--stride must be an integer in [1, seq-len ${seqLen}], got ${stride}`);
}

export async function perplexity(model: Transformer, ids: Int32Array, options: PerplexityOptions): Promise<PerplexityResult> {
  const { seqLen, stride, signal, onProgress } = options;
  checkWindow(seqLen, stride, model.config.maxPositionEmbeddings);
  const n = ids.length;
  if (n < 2) throw new UserError(`perplexity needs at least 2 tokens, the data has ${n}`);
  const started = performance.now();
  let nllSum = 0;
  let tokens = 0;
  let windows = 0;
  let prevEnd = 0;
  for (let begin = 0; prevEnd < n; begin += stride) {
    if (signal?.aborted) throw new CancelledError();
    const end = Math.min(begin + seqLen, n);
    const window = ids.subarray(begin, end);
    // Position t predicts token begin + t + 1; the last position has no target in the window.
    const targets = new Int32Array(window.length);
    targets.set(ids.subarray(begin + 1, end), 0);
    const nll = await model.nll(window, targets, signal);
    const first = Math.max(prevEnd, begin + 1);
    for (let j = first; j < end; j++) nllSum += nll[j - 1 - begin];
    tokens += end - first;
    windows++;
    prevEnd = end;
    onProgress?.(tokens, n - 1);
  }
  const ppl = Math.exp(nllSum / tokens);
  // A NaN or infinite perplexity is an error to report, never a number to print and record.
  if (!Number.isFinite(ppl)) throw new UserError(`perplexity came out ${ppl}: the model produced non-finite scores (NaN or infinite weights or activations)`);
  return { ppl, nll_sum: nllSum, tokens, windows, seconds: (performance.now() - started) / 1000 };
}
