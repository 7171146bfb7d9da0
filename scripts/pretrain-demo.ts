// Pretrains the demo model (assets/demo-model) from scratch on a seeded synthetic corpus, so
// that perplexity means something and 2-bit quantization visibly hurts: sentences of a small
// grammar with number agreement, arithmetic facts and named people with fixed attributes.
// The demo model's shapes, config.json and byte-level tokenizer; all
// parameters trained with AdamW (warm-up + cosine, clipping) through parameterGradients.
// Also writes assets/demo-data/{train,eval}.txt (held-out text: same generator, other seed).
//   npx tsx scripts/pretrain-demo.ts [--out assets/demo-model] [--steps N] [--minutes M] [--small]
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { OrtRuntime } from '../src-main/engine/tensor/ort-runtime';
import { heldOutPerplexity, initWeights, pretrain, writeWeights, type PretrainResult } from '../src-main/engine/train/pretrain';
import { Rng } from '../src-main/engine/util/random';

// ---------------------------------------------------------------------------------------------
// The corpus.

const PEOPLE = ['Mara', 'Tobin', 'Iris', 'Kasimir', 'Lena', 'Oskar', 'Priya', 'Hugo', 'Nadia', 'Felix', 'Selma', 'Ruben', 'Ada', 'Jonas', 'Wren', 'Milo'];
const CITIES = ['Oslo', 'Lima', 'Kyoto', 'Porto', 'Dakar', 'Quito', 'Riga', 'Perth'];
const JOBS = ['baker', 'pilot', 'doctor', 'farmer', 'painter', 'sailor', 'teacher', 'miner'];
const PETS = ['cat', 'dog', 'parrot', 'horse', 'goat', 'rabbit', 'turtle', 'hamster'];
const COLORS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white', 'black'];

interface Person {
  name: string;
  city: string;
  job: string;
  pet: string;
  color: string;
  age: number;
}

/** The same people (and attributes) for every seed: the held-out text tests recall of them. */
export const ENTITIES: Person[] = (() => {
  const rng = new Rng(7);
  return PEOPLE.map((name) => ({
    name,
    city: pick(rng, CITIES),
    job: pick(rng, JOBS),
    pet: pick(rng, PETS),
    color: pick(rng, COLORS),
    age: 20 + (rng.nextUint32() % 60),
  }));
})();

// [singular, plural]
const NOUNS: Array<[string, string]> = [
  ['cat', 'cats'], ['dog', 'dogs'], ['child', 'children'], ['mouse', 'mice'], ['fox', 'foxes'],
  ['bird', 'birds'], ['farmer', 'farmers'], ['box', 'boxes'], ['wolf', 'wolves'], ['baby', 'babies'],
];
const INTRANSITIVE: Array<[string, string]> = [['sleeps', 'sleep'], ['runs', 'run'], ['sings', 'sing'], ['waits', 'wait'], ['jumps', 'jump'], ['hides', 'hide']];
const TRANSITIVE: Array<[string, string]> = [['sees', 'see'], ['likes', 'like'], ['chases', 'chase'], ['finds', 'find'], ['watches', 'watch']];
const ADJECTIVES = ['small', 'old', 'happy', 'quiet', 'brave', 'tired', 'clever'];
const ADVERBS = ['quickly', 'slowly', 'loudly', 'often', 'today'];
const PLACES = ['near the river', 'in the garden', 'on the hill', 'under the bridge', 'behind the barn'];
const DET_SG = ['the', 'a', 'this', 'every'];
const DET_PL = ['the', 'these', 'some', 'many', 'two'];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.nextUint32() % xs.length];
}

function chance(rng: Rng, p: number): boolean {
  return rng.uniform() < p;
}

function nounPhrase(rng: Rng): { text: string; plural: boolean } {
  const plural = chance(rng, 0.5);
  const [sg, pl] = pick(rng, NOUNS);
  const det = pick(rng, plural ? DET_PL : DET_SG);
  const adj = chance(rng, 0.4) ? `${pick(rng, ADJECTIVES)} ` : '';
  // "a" before a vowel sound becomes "an".
  const d = det === 'a' && /^[aeiou]/.test(adj || sg) ? 'an' : det;
  return { text: `${d} ${adj}${plural ? pl : sg}`, plural };
}

function grammarSentence(rng: Rng): string {
  const subj = nounPhrase(rng);
  const place = chance(rng, 0.3) ? ` ${pick(rng, PLACES)}` : '';
  const agree = (v: [string, string]) => (subj.plural ? v[1] : v[0]);
  let rest: string;
  const r = rng.uniform();
  if (r < 0.35) rest = `${agree(INTRANSITIVE[rng.nextUint32() % INTRANSITIVE.length])}${chance(rng, 0.5) ? ` ${pick(rng, ADVERBS)}` : ''}`;
  else if (r < 0.7) rest = `${agree(pick(rng, TRANSITIVE))} ${nounPhrase(rng).text}`;
  else rest = `${subj.plural ? 'are' : 'is'} ${pick(rng, ADJECTIVES)}`;
  const s = `${subj.text}${place} ${rest}.`;
  return s[0].toUpperCase() + s.slice(1);
}

function arithmeticSentence(rng: Rng): string {
  const r = rng.uniform();
  if (r < 0.5) {
    const a = rng.nextUint32() % 50;
    const b = rng.nextUint32() % 50;
    return `${a} + ${b} = ${a + b}.`;
  }
  if (r < 0.75) {
    const a = rng.nextUint32() % 60;
    const b = rng.nextUint32() % (a + 1);
    return `${a} - ${b} = ${a - b}.`;
  }
  const a = 2 + (rng.nextUint32() % 8);
  const b = 2 + (rng.nextUint32() % 8);
  return `${a} times ${b} is ${a * b}.`;
}

function entitySentence(rng: Rng): string {
  const p = pick(rng, ENTITIES);
  switch (rng.nextUint32() % 8) {
    case 0: return `${p.name} lives in ${p.city}.`;
    case 1: return `${p.name} works as a ${p.job}.`;
    case 2: return `${p.name} has a ${p.pet}.`;
    case 3: return `The favorite color of ${p.name} is ${p.color}.`;
    case 4: return `${p.name} is ${p.age} years old.`;
    case 5: return `Where does ${p.name} live? In ${p.city}.`;
    case 6: return `${p.name} the ${p.job} went home to ${p.city} with the ${p.pet}.`;
    default: return `What does ${p.name} do? ${p.name} is a ${p.job}.`;
  }
}

/** Lines of 3 to 6 sentences, about `bytes` long, the same for the same seed. */
export function generateCorpus(seed: number, bytes: number): string {
  const rng = new Rng(seed);
  const lines: string[] = [];
  let n = 0;
  while (n < bytes) {
    const k = 3 + (rng.nextUint32() % 4);
    const parts: string[] = [];
    for (let i = 0; i < k; i++) {
      const r = rng.uniform();
      parts.push(r < 0.4 ? grammarSentence(rng) : r < 0.65 ? arithmeticSentence(rng) : entitySentence(rng));
    }
    const line = parts.join(' ');
    lines.push(line);
    n += line.length + 1;
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// The model files: config.json, BF16 weights, the byte-level tokenizer.

const SPECIALS = ['<unk>', '<s>', '</s>'];

/** GPT-2's reversible byte → printable-character map used by byte-level BPE. */
function byteToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  return map;
}

function tokenizerJson(): object {
  const vocab: Record<string, number> = {};
  SPECIALS.forEach((t, i) => (vocab[t] = i));
  byteToUnicode().forEach((ch, b) => (vocab[ch] = SPECIALS.length + b));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
}

/** The byte-level tokenizer without merges: byte b is token 3 + b. */
export function encodeBytes(text: string): Int32Array {
  const bytes = Buffer.from(text, 'utf8');
  return Int32Array.from(bytes, (b) => SPECIALS.length + b);
}

interface Shape {
  name: string;
  H: number;
  I: number;
  L: number;
  heads: number;
  kv: number;
  V: number;
}

const FULL: Shape = { name: 'loftq-studio/demo-llama-2m', H: 192, I: 512, L: 4, heads: 6, kv: 2, V: 512 };
const SMALL: Shape = { name: 'loftq-studio/demo-llama-tiny', H: 32, I: 64, L: 1, heads: 2, kv: 1, V: 512 };

function configJson(s: Shape): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    _name_or_path: s.name,
    hidden_size: s.H,
    intermediate_size: s.I,
    num_hidden_layers: s.L,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kv,
    head_dim: s.H / s.heads,
    hidden_act: 'silu',
    vocab_size: s.V,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'bfloat16',
  };
}

// ---------------------------------------------------------------------------------------------
// The run.

export interface PretrainDemoOptions {
  out: string;
  /** Where train.txt and eval.txt go. */
  dataDir: string;
  small: boolean;
  steps?: number;
  minutes?: number;
  log?: (line: string) => void;
}

export interface PretrainDemoResult extends PretrainResult {
  initialPpl: number;
  finalPpl: number;
  params: number;
}

export const FULL_DEFAULTS = { steps: 1400, minutes: 9, seqLen: 128, batchRows: 8, lr: 3e-3, warmup: 60, trainBytes: 400_000, evalBytes: 24_000, evalEvery: 200, evalTokens: 4096 };
export const SMALL_DEFAULTS = { steps: 20, minutes: 1, seqLen: 32, batchRows: 2, lr: 1e-2, warmup: 3, trainBytes: 8_000, evalBytes: 1_000, evalEvery: 0, evalTokens: 1_000 };

export async function pretrainDemo(o: PretrainDemoOptions): Promise<PretrainDemoResult> {
  const log = o.log ?? ((s: string) => console.log(s));
  const d = o.small ? SMALL_DEFAULTS : FULL_DEFAULTS;
  const shape = o.small ? SMALL : FULL;
  const steps = o.steps ?? d.steps;
  const minutes = o.minutes ?? d.minutes;
  const trainText = generateCorpus(1001, d.trainBytes);
  const evalText = generateCorpus(2002, d.evalBytes);
  await mkdir(o.dataDir, { recursive: true });
  await writeFile(join(o.dataDir, 'train.txt'), trainText);
  await writeFile(join(o.dataDir, 'eval.txt'), evalText);
  const trainIds = encodeBytes(trainText);
  const evalIds = encodeBytes(evalText);
  log(`corpus: ${trainIds.length.toLocaleString('en-US')} train tokens, ${evalIds.length.toLocaleString('en-US')} held-out tokens (${o.dataDir})`);

  const config = configJson(shape);
  const weights = initWeights(config, 20240611);
  const runtime = new OrtRuntime({ provider: 'cpu', threads: 0 });
  const initialPpl = await heldOutPerplexity(weights, evalIds.subarray(0, d.evalTokens), d.seqLen, runtime);
  log(`initial held-out perplexity ${initialPpl.toFixed(2)}; training ${steps} steps × ${d.batchRows} rows × ${d.seqLen} tokens (at most ${minutes} min)`);
  const r = await pretrain(weights, trainIds, evalIds, {
    seqLen: d.seqLen,
    batchRows: d.batchRows,
    steps,
    maxSeconds: minutes * 60,
    lr: d.lr,
    minLr: d.lr / 10,
    warmup: Math.min(d.warmup, steps),
    weightDecay: 0.01,
    clip: 1.0,
    seed: 1,
    evalEvery: d.evalEvery,
    evalTokens: d.evalTokens,
    runtime,
    onLog: log,
  });
  const finalPpl = await heldOutPerplexity(weights, evalIds, d.seqLen, runtime);
  log(`trained ${r.steps} steps in ${(r.seconds / 60).toFixed(1)} min: train loss ${r.finalLoss.toFixed(4)} (mean of the last 20 steps), held-out perplexity ${finalPpl.toFixed(3)} (fp32, all ${evalIds.length} tokens)`);

  await mkdir(o.out, { recursive: true });
  await writeWeights(weights, join(o.out, 'model.safetensors'), 'BF16');
  await writeFile(join(o.out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  await writeFile(join(o.out, 'tokenizer.json'), JSON.stringify(tokenizerJson()) + '\n');
  await writeFile(
    join(o.out, 'tokenizer_config.json'),
    JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', model_max_length: 128 }, null, 2) + '\n',
  );
  const params = [weights.embed, weights.norm, weights.lmHead, ...weights.layers.flatMap((l) => [...l.tensors.values()])].reduce((s, t) => s + t.length, 0);
  const command = `npx tsx scripts/pretrain-demo.ts${o.small ? ' --small' : ''}${o.steps !== undefined ? ` --steps ${o.steps}` : ''}${o.minutes !== undefined ? ` --minutes ${o.minutes}` : ''}`;
  const readme = [
    `# ${shape.name}`,
    '',
    `A ${(params / 1e6).toFixed(2)}M-parameter Llama-architecture model (${shape.L} layers, hidden ${shape.H}, ${shape.heads} heads / ${shape.kv} KV heads,`,
    `intermediate ${shape.I}, vocabulary ${shape.V} rows of which 259 are used: 3 specials + 256 bytes), stored in bfloat16, for`,
    "LoftQ Studio's demo. Pretrained from scratch on CPU by:",
    '',
    '```',
    command,
    '```',
    '',
    `- Data: a seeded synthetic corpus (scripts/pretrain-demo.ts, generateCorpus): sentences of a small grammar with`,
    `  number agreement, arithmetic facts ("17 + 25 = 42.") and ${ENTITIES.length} named people with fixed attributes.`,
    `  Training text: assets/demo-data/train.txt (seed 1001, ${trainIds.length.toLocaleString('en-US')} bytes); held-out text: assets/demo-data/eval.txt`,
    `  (same generator, seed 2002, ${evalIds.length.toLocaleString('en-US')} bytes). Byte-level tokens: one token per byte.`,
    `- Training: all parameters, AdamW (β 0.9/0.95, weight decay 0.01 except norms and embeddings), peak lr ${d.lr}`,
    `  with ${Math.min(d.warmup, steps)} warm-up steps and cosine decay to ${(d.lr / 10).toPrecision(2)}, gradient clipping 1.0, ${d.batchRows} packed rows of`,
    `  ${d.seqLen} tokens per step; initialization N(0, 0.02²), norms 1.`,
    `- Result: ${r.steps} steps (${(r.steps * d.batchRows * d.seqLen).toLocaleString('en-US')} tokens) in ${(r.seconds / 60).toFixed(1)} min; final train loss`,
    `  ${r.finalLoss.toFixed(3)}; held-out perplexity ${finalPpl.toFixed(3)} at full precision (window ${d.seqLen}, stride ${d.seqLen / 2},`,
    `  float32 weights before the bf16 rounding; initial ${initialPpl.toFixed(1)}).`,
    '',
    'Evaluate: `loftq eval assets/demo-model --data assets/demo-data/eval.txt --seq-len 128`.',
    '',
  ].join('\n');
  await writeFile(join(o.out, 'README.md'), readme);
  log(`wrote ${o.out}: ${params.toLocaleString('en-US')} parameters`);
  return { ...r, initialPpl, finalPpl, params };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, steps: { type: 'string' }, minutes: { type: 'string' }, small: { type: 'boolean', default: false } },
  });
  const small = values.small ?? false;
  const out = resolve(values.out ?? (small ? await mkdtemp(join(tmpdir(), 'loftq-pretrain-')) : 'assets/demo-model'));
  const num = (s: string | undefined, what: string) => {
    if (s === undefined) return undefined;
    const v = Number(s);
    if (!(v > 0)) throw new Error(`--${what} must be a positive number (got ${s})`);
    return v;
  };
  const steps = num(values.steps, 'steps');
  if (steps !== undefined && !Number.isInteger(steps)) throw new Error('--steps must be an integer');
  await pretrainDemo({ out, dataDir: small ? join(out, 'demo-data') : resolve('assets/demo-data'), small, steps, minutes: num(values.minutes, 'minutes') });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
