// Sliding-window perplexity, the standard protocol: windows of seqLen tokens starting every
// stride tokens; each window scores only the tokens the previous window did not (so every
// token after the first is counted exactly once, with up to seqLen − 1 tokens of context).
import { CancelledError, UserError } from '../errors';
import type { LanguageModel } from './language-model';

export interface PerplexityOptions {
  seqLen: number;
  stride: number;
  /** Windows of equal length run together, this many at a time (default 1). */
  batch?: number;
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

export async function perplexity(model: LanguageModel, ids: Int32Array, options: PerplexityOptions): Promise<PerplexityResult> {
  const { seqLen, stride, signal, onProgress } = options;
  const batch = options.batch ?? 1;
  checkWindow(seqLen, stride, model.config.maxPositionEmbeddings);
  if (!Number.isInteger(batch) || batch < 1) throw new UserError(`--batch must be a positive integer, got ${batch}`);
  const n = ids.length;
  if (n < 2) throw new UserError(`perplexity needs at least 2 tokens, the data has ${n}`);
  const started = performance.now();
  // Window [begin, end) scores its tokens from `first` on (those the previous window did not).
  const windows: Array<{ begin: number; end: number; first: number }> = [];
  for (let begin = 0, prevEnd = 0; prevEnd < n; begin += stride) {
    const end = Math.min(begin + seqLen, n);
    windows.push({ begin, end, first: Math.max(prevEnd, begin + 1) });
    prevEnd = end;
  }
  let nllSum = 0;
  let tokens = 0;
  for (let w = 0; w < windows.length; ) {
    if (signal?.aborted) throw new CancelledError();
    // Consecutive windows of one length go together, up to `batch` of them.
    const len = windows[w].end - windows[w].begin;
    let count = 1;
    while (count < batch && w + count < windows.length && windows[w + count].end - windows[w + count].begin === len) count++;
    const group = windows.slice(w, w + count);
    const input = new Int32Array(count * len);
    // Position t predicts token begin + t + 1; the last position has no target in the window.
    const targets = new Int32Array(count * len);
    group.forEach(({ begin, end }, i) => {
      input.set(ids.subarray(begin, end), i * len);
      targets.set(ids.subarray(begin + 1, end), i * len);
    });
    const nll = await model.nll(input, targets, signal, count);
    group.forEach(({ begin, end, first }, i) => {
      for (let j = first; j < end; j++) nllSum += nll[i * len + j - 1 - begin];
      tokens += end - first;
    });
    w += count;
    onProgress?.(tokens, n - 1);
  }
  const ppl = Math.exp(nllSum / tokens);
  // A NaN or infinite perplexity is an error to report, never a number to print and record.
  if (!Number.isFinite(ppl)) throw new UserError(`perplexity came out ${ppl}: the model produced non-finite scores (NaN or infinite weights or activations)`);
  return { ppl, nll_sum: nllSum, tokens, windows: windows.length, seconds: (performance.now() - started) / 1000 };
}
