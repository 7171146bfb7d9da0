// The engine's messages name CLI flags ("--rank 99 is larger than …", "use --force"); the app
// shows them in its own words, naming the field or control the user sees instead.
const FIELDS: ReadonlyArray<readonly [string, string]> = [
  ['--bits-map', 'the bits grid'],
  ['--eval-every', 'Evaluate every'],
  ['--eval-data', 'Held-out data'],
  ['--max-tokens', 'Max tokens'],
  ['--seq-len', 'Sequence length'],
  ['--checkpoint-every', 'Checkpoint every'],
  ['--rank', 'Rank r'],
  ['--alpha', 'LoRA alpha'],
  ['--iters', 'Iterations T'],
  ['--block', 'Block size'],
  ['--bits', 'Bits'],
  ['--quant', 'Quantizer'],
  ['--targets', 'Target modules'],
  ['--device', 'Device'],
  ['--seed', 'Seed'],
  ['--steps', 'Steps'],
  ['--lr', 'Learning rate'],
  ['--batch', 'Batch'],
  ['--accum', 'Gradient accumulation'],
  ['--warmup', 'Warm-up steps'],
  ['--stride', 'Stride'],
  ['--data', 'Training data'],
  ['--field', 'Text field'],
  ['--format', 'Format'],
  ['--out', 'Output folder'],
  ['--method', 'Method'],
  ['--svd', 'SVD'],
];

/** `message` with CLI wording replaced by the app's (flags → field names, "--force" → the checkbox). */
export function inAppWords(message: string): string {
  let m = message
    .replace(/\s*\(use --force to replace it\)/g, ' (tick “Replace the folder” to replace it)')
    .replace(/--force/g, '“Replace”');
  for (const [flag, label] of FIELDS) m = m.replace(new RegExp(`${flag}(?![\\w-])`, 'g'), label);
  return m;
}
