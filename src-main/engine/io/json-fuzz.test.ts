// Fuzz: thousands of corruptions of valid config.json, tokenizer.json, run.json, layers.json,
// adapter_config.json and of the server's request messages. Each must either be accepted or
// refused with a UserError (one line), never another exception and never a hang.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StudioApi } from '../../api/contract';
import { byteLevelBpe, sentencePieceBpe } from '../../test-support/tokenizer-fixtures';
import { makeTempDir } from '../../test-support/tiny-model';
import { handleRequest } from '../../wire/rpc';
import { UserError } from '../errors';
import { adapterSettings } from '../adapter/peft';
import { readLayers, readRunRecord } from '../runs/run-dir';
import { loadTokenizer } from '../text/tokenizer';
import { Rng } from '../util/random';
import { readModelConfig } from './hf-config';
import { readJson } from './json-file';

const ITERATIONS = 600;
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9);
const why = `seed ${seed} (replay with FUZZ_SEED=${seed})`;

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('loftq-json-fuzz-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ODD = [null, true, false, 0, -1, 1.5, 1e308, -0, 2 ** 64, '', 'x', '\n', '__proto__', [], {}, [[[]]], { a: null }, 'é\u0000'];

/** One corruption of a JSON value: a field replaced, removed, retyped, or the text cut or flipped. */
function mutate(rng: Rng, value: unknown): string {
  const pick = (xs: readonly unknown[]) => xs[Math.floor(rng.uniform() * xs.length)];
  const text = JSON.stringify(value);
  switch (Math.floor(rng.uniform() * 5)) {
    case 0:
      return text.slice(0, Math.floor(rng.uniform() * text.length));
    case 1: {
      const bytes = Buffer.from(text);
      for (let i = 0; i < 1 + Math.floor(rng.uniform() * 4); i++) bytes[Math.floor(rng.uniform() * bytes.length)] = Math.floor(rng.uniform() * 256);
      return bytes.toString('latin1');
    }
    default: {
      // Walk to a random place in the structure and replace or delete what is there.
      const copy = JSON.parse(text) as unknown;
      let node: unknown = copy;
      for (let depth = 0; depth < 4; depth++) {
        if (typeof node !== 'object' || node === null) break;
        const keys = Object.keys(node);
        if (keys.length === 0) break;
        const key = keys[Math.floor(rng.uniform() * keys.length)];
        const child = (node as Record<string, unknown>)[key];
        if (rng.uniform() < 0.4 || typeof child !== 'object' || child === null) {
          if (rng.uniform() < 0.2) delete (node as Record<string, unknown>)[key];
          else (node as Record<string, unknown>)[key] = pick(ODD);
          break;
        }
        node = child;
      }
      return rng.uniform() < 0.1 ? JSON.stringify(pick(ODD)) : JSON.stringify(copy);
    }
  }
}

/** Runs `read` on `count` corruptions; every failure must be a one-line UserError. */
async function fuzz(name: string, valid: unknown, write: (text: string) => Promise<void>, read: () => Promise<unknown>): Promise<void> {
  const rng = new Rng(seed ^ name.length);
  let refused = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    await write(mutate(rng, valid));
    try {
      await read();
    } catch (e) {
      if (!(e instanceof UserError)) throw new Error(`${name}, iteration ${i}, ${why}: ${(e as Error)?.stack ?? String(e)}`);
      expect((e as Error).message, why).not.toMatch(/\n/);
      refused++;
    }
  }
  // The corruptions must mostly be refused (a fuzzer that only produced valid input would prove nothing).
  expect(refused, `${name}: ${why}`).toBeGreaterThan(ITERATIONS / 4);
}

const CONFIG = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, vocab_size: 50, max_position_embeddings: 128, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, torch_dtype: 'float32',
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
};
const RUN = { format: 'loftq-run/1', kind: 'quantize', status: 'done', config: { method: 'loftq', bits: 2 }, model: { path: '/m' }, created: '2026-12-01T00:00:00Z', timings: { total_s: 1 }, summary: { matrices: 1 } };
const LAYERS = [{ name: 'model.layers.0.self_attn.q_proj', shape: [64, 64], bits: 2, method: 'loftq', err_q: 0.5, err_init: 0.4, step_errors: [0.45, 0.4], best_step: 2, residual_top_sv: [1, 0.5], seconds: 0.1 }];
const ADAPTER = { peft_type: 'LORA', r: 4, lora_alpha: 8, use_rslora: false, target_modules: ['q_proj'] };

describe('JSON readers under corruption', () => {
  it('config.json', async () => {
    const m = join(dir, 'model');
    await mkdir(m, { recursive: true });
    await fuzz('config', CONFIG, (t) => writeFile(join(m, 'config.json'), t), () => readModelConfig(m));
  });

  it('tokenizer.json (byte-level and SentencePiece-style)', async () => {
    for (const [name, tok] of [['byte-level', byteLevelBpe()], ['sentencepiece', sentencePieceBpe()]] as const) {
      const m = join(dir, `tok-${name}`);
      await mkdir(m, { recursive: true });
      await fuzz(`tokenizer ${name}`, tok, (t) => writeFile(join(m, 'tokenizer.json'), t), async () => {
        const t = await loadTokenizer(m);
        await t.encode('hello world');
        t.dispose();
      });
    }
  });

  it('run.json, layers.json and adapter_config.json', async () => {
    const run = join(dir, 'run');
    await mkdir(run, { recursive: true });
    await writeFile(join(run, 'layers.json'), JSON.stringify(LAYERS));
    await fuzz('run.json', RUN, (t) => writeFile(join(run, 'run.json'), t), () => readRunRecord(run));
    await writeFile(join(run, 'run.json'), JSON.stringify(RUN));
    await fuzz('layers.json', LAYERS, (t) => writeFile(join(run, 'layers.json'), t), () => readLayers(run));
    const path = join(run, 'adapter_config.json');
    await fuzz('adapter_config.json', ADAPTER, (t) => writeFile(path, t), async () => adapterSettings(await readJson(path), path));
  });
});

describe('server requests under corruption', () => {
  it('every malformed message gets an error response or is ignored; the api sees only valid calls', async () => {
    const calls: string[] = [];
    const api = new Proxy({} as StudioApi, {
      get: (_t, method: string) => async (...params: unknown[]) => {
        calls.push(method);
        if (typeof params[0] !== 'string' && method === 'getRun') throw new Error('validation let a bad call through');
        return null;
      },
    });
    const rng = new Rng(seed);
    const valid = { kind: 'request', id: 7, method: 'getRun', params: ['run-a'] };
    for (let i = 0; i < ITERATIONS * 3; i++) {
      const raw = rng.uniform() < 0.05 ? `${'['.repeat(100_000)}${']'.repeat(100_000)}` : mutate(rng, valid);
      const out = await handleRequest(api, raw);
      if (out === null) continue;
      expect(out.kind, why).toBe('response');
      if (out.kind === 'response' && !out.ok) expect(out.error.message, why).not.toMatch(/internal error/);
    }
    expect(calls.length).toBeGreaterThan(0);
    // Deeply nested parameters are dropped before JSON.parse sees them.
    const deep = `{"kind":"request","id":1,"method":"startQuantize","params":[${'{"a":'.repeat(40)}1${'}'.repeat(40)}]}`;
    expect(await handleRequest(api, deep)).toBeNull();
  });
});
