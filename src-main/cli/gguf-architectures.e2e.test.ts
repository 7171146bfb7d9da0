// GGUF export of each architecture and tokenizer family llama.cpp is given, judged by llama.cpp
// (node-llama-cpp) on small generated models: qwen2 (q/k/v biases, no RoPE reordering, tied
// embeddings, Qwen2's pre-tokenizer), mistral (SentencePiece-style Metaspace tokenizer, llama3
// RoPE scaling through rope_freqs, rsLoRA) and llama (Llama-2-style Prepend tokenizer, linear
// RoPE scaling, only some matrices quantized). Exported with every tensor F32, llama.cpp's
// log-probabilities for base + adapter must equal the engine's Q + s·B·A to 2e-5 (measured
// ≤ 3e-6; a RoPE row order or rope_freqs left out gives 0.6–0.9); the default
// export must load too, and bad input is refused in one line.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGgufExport } from '../engine/export/gguf';
import { readGguf } from '../engine/gguf/read';
import { loadTokenizer } from '../engine/text/tokenizer';
import { loftq } from '../test-support/cli';
import { llamaCppUnavailable, loadJudged, type JudgedModel } from '../test-support/llama-cpp-judge';
import { difference, engineLogProbs } from '../test-support/log-probs';
import { makeTempDir, writeTinyModel, type TinyModelOptions } from '../test-support/tiny-model';
import { byteLevelBpe, sentencePieceBpe, writeTokenizer } from '../test-support/tokenizer-fixtures';

const unavailable = llamaCppUnavailable();
let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('loftq-gguf-arch-');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Case {
  name: string;
  model: TinyModelOptions;
  tokenizer: Record<string, unknown>;
  quantize: string[];
  text: string;
  /** What the export's metadata must say. */
  metadata: Record<string, unknown>;
  /** Tensors that must (or, with false, must not) be in model.gguf, with their types. */
  tensors: Record<string, string | false>;
  alpha: number;
}

const SHAPE = { layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 96, std: 0.3 } as const;

const CASES: Case[] = [
  {
    name: 'qwen2, byte-level BPE with Qwen2 splitting, tied embeddings, q8_0',
    model: { ...SHAPE, architecture: 'qwen2', vocab: 288, tied: true, seed: 3 },
    tokenizer: byteLevelBpe({ qwen2Split: true }),
    quantize: ['--quant', 'q8_0', '--rank', '4', '--alpha', '8'],
    text: 'hello world 2020, hello hello!',
    metadata: { 'general.architecture': 'qwen2', 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': 'qwen2', 'qwen2.attention.head_count_kv': 2 },
    tensors: { 'blk.0.attn_q.bias': 'F32', 'blk.1.attn_v.weight': 'Q8_0', 'output.weight': false },
    alpha: 8,
  },
  {
    name: 'mistral, SentencePiece-style (Metaspace) tokenizer, llama3 RoPE scaling, rsLoRA, NF4 stored as F16',
    model: {
      ...SHAPE,
      architecture: 'mistral',
      vocab: 288,
      seed: 4,
      configOverrides: { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } },
    },
    tokenizer: sentencePieceBpe({ style: 'metaspace' }),
    quantize: ['--bits', '4', '--rank', '4', '--alpha', '8', '--rslora'],
    text: 'hello world hello wor',
    metadata: { 'general.architecture': 'llama', 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.add_space_prefix': true },
    tensors: { 'rope_freqs.weight': 'F32', 'blk.0.attn_k.weight': 'F16', 'output.weight': 'F32' },
    alpha: 8 * Math.sqrt(4),
  },
  {
    name: 'llama, Llama-2-style (Prepend) tokenizer, linear RoPE scaling, q_proj and v_proj only, uniform 4-bit',
    model: { ...SHAPE, architecture: 'llama', vocab: 288, dtype: 'F16', seed: 5, configOverrides: { rope_scaling: { type: 'linear', factor: 2 } } },
    tokenizer: sentencePieceBpe({ style: 'prepend' }),
    quantize: ['--quant', 'uniform', '--bits', '4', '--rank', '4', '--alpha', '4', '--targets', 'q_proj,v_proj'],
    text: 'hello world',
    metadata: { 'general.architecture': 'llama', 'llama.rope.scaling.type': 'linear', 'tokenizer.ggml.add_space_prefix': true },
    tensors: { 'blk.0.attn_q.weight': 'F16', 'blk.0.ffn_up.weight': 'F16', 'blk.1.attn_output.weight': 'F16' },
    alpha: 4,
  },
];

describe('GGUF export per architecture', () => {
  const judged: JudgedModel[] = [];
  afterAll(async () => {
    for (const j of judged) await j.dispose();
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const dir = join(tmp, c.name.split(',')[0]);
      const model = join(dir, 'model');
      await writeTinyModel(model, c.model);
      await writeTokenizer(model, c.tokenizer);
      const run = join(dir, 'run');
      const q = loftq('quantize', model, '--out', run, ...c.quantize, '--json');
      expect(q.code, q.stderr).toBe(0);
      const out = join(dir, 'gguf');
      const e = loftq('export', run, '--format', 'gguf', '--out', out, '--json');
      expect(e.code, e.stderr).toBe(0);

      const file = await readGguf(join(out, 'model.gguf'));
      for (const [k, v] of Object.entries(c.metadata)) expect(file.metadata.get(k), k).toBe(v);
      for (const [name, type] of Object.entries(c.tensors)) {
        if (type === false) expect(file.tensors.has(name), name).toBe(false);
        else expect(file.tensors.get(name)?.type, name).toBe(type);
      }
      const adapter = await readGguf(join(out, 'adapter.gguf'));
      expect(adapter.metadata.get('adapter.lora.alpha') as number).toBeCloseTo(c.alpha, 5);
      const result = e.events.at(-1) as { notes: string[] };
      if (c.tensors['blk.0.attn_k.weight'] === 'F16') expect(result.notes.join(' ')).toMatch(/no type for nf4.*F16 of Q/);

      if (unavailable !== null) return;
      const tokenizer = await loadTokenizer(join(run, 'backbone'));
      const base = await loadJudged(join(out, 'model.gguf'), join(out, 'adapter.gguf'), 32);
      judged.push(base);
      // llama.cpp's tokenizer from our metadata splits the text as the model's tokenizer does.
      expect(base.tokenize(c.text)).toEqual(Array.from(await tokenizer.encode(c.text, { addBos: false })));

      const exact = join(dir, 'gguf-f32');
      await mkdir(exact);
      await writeGgufExport(run, exact, { allF32: true });
      const judge = await loadJudged(join(exact, 'model.gguf'), join(exact, 'adapter.gguf'), 32);
      judged.push(judge);
      const ids = Array.from(await tokenizer.encode(c.text, { addBos: false }));
      const tokens = [...ids, ...ids, ...ids].slice(0, 24);
      const d = difference(await judge.logProbs(tokens), await engineLogProbs(run, true, tokens));
      console.log(`${c.name.split(',')[0]}: max |Δ log p| ${d.max.toExponential(2)} over ${tokens.length} positions`);
      expect(d.max).toBeLessThan(2e-5);
      // The default export runs too (its quantized products are judged on the demo model).
      const native = difference(await base.logProbs(tokens), await engineLogProbs(run, true, tokens));
      expect(native.mean).toBeLessThan(0.05);
    }, 120_000);
  }

  it('refuses what llama.cpp cannot run, in one line, and writes nothing', async () => {
    const dir = join(tmp, 'bad');
    const model = join(dir, 'model');
    await writeTinyModel(model, {
      ...SHAPE,
      architecture: 'qwen2',
      vocab: 288,
      configOverrides: { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } },
    });
    await writeTokenizer(model, byteLevelBpe());
    const run = join(dir, 'run');
    expect(loftq('quantize', model, '--out', run, '--rank', '4').code).toBe(0);
    const out = join(dir, 'gguf');
    const e = loftq('export', run, '--format', 'gguf', '--out', out);
    expect(e.code).toBe(1);
    const lines = e.stderr.trim().split('\n').filter((l) => !l.startsWith('['));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/qwen2 architecture has no llama3 RoPE scaling/);
    expect(loftq('export', run, '--format', 'gguf', '--out', out).code).toBe(1);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);

    // An activation llama.cpp's llama does not compute.
    const gelu = join(dir, 'gelu');
    await writeTinyModel(gelu, { ...SHAPE, vocab: 288, configOverrides: { hidden_act: 'gelu' } });
    await writeTokenizer(gelu, byteLevelBpe());
    const geluRun = join(dir, 'gelu-run');
    expect(loftq('quantize', gelu, '--out', geluRun, '--rank', '4').code).toBe(0);
    const g = loftq('export', geluRun, '--format', 'gguf', '--out', out);
    expect(g.code).toBe(1);
    expect(g.stderr.trim().split('\n').filter((l) => !l.startsWith('['))).toEqual([expect.stringMatching(/computes silu, but the model's hidden_act is "gelu"/)]);
    expect(existsSync(out)).toBe(false);
  });
});
