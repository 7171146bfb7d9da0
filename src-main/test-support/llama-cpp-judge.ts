// llama.cpp itself (node-llama-cpp's prebuilt CPU binaries) as the judge of our GGUF export:
// it loads model.gguf (+ adapter.gguf) and gives the next-token distribution at every position,
// from which the tests take log-probabilities and a sliding-window perplexity with the same
// protocol as the engine's (model/perplexity.ts). The KV cache is kept in F32 so the judge adds
// no rounding of its own beyond what llama.cpp does with the weights.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

type NodeLlamaCpp = typeof import('node-llama-cpp');
type Llama = Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;
type LlamaModel = Awaited<ReturnType<Llama['loadModel']>>;

const PREBUILT = join(process.cwd(), 'node_modules', '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64');

/** Why llama.cpp cannot judge here, or null when it can. */
export function llamaCppUnavailable(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'the tests use node-llama-cpp\'s linux-x64 prebuilt binaries';
  if (!existsSync(PREBUILT)) return `${PREBUILT} is missing (npm install node-llama-cpp)`;
  return null;
}

let llama: Promise<Llama> | null = null;
async function getLlama(): Promise<Llama> {
  llama ??= import('node-llama-cpp').then((m) => m.getLlama({ gpu: false, build: 'never', logLevel: m.LlamaLogLevel.error, progressLogs: false }));
  return llama;
}

export interface JudgedModel {
  /** llama.cpp's own tokenization of text (no BOS added). */
  tokenize(text: string): number[];
  /** log p(next token) over the whole vocabulary at every position of `ids`, fresh context. */
  logProbs(ids: readonly number[]): Promise<Float64Array[]>;
  /** Sliding-window perplexity (windows of seqLen every stride tokens; as the engine scores). */
  perplexity(ids: readonly number[], seqLen: number, stride: number): Promise<{ ppl: number; tokens: number }>;
  dispose(): Promise<void>;
}

export async function loadJudged(modelPath: string, adapterPath: string | null, contextSize: number): Promise<JudgedModel> {
  const l = await getLlama();
  const model: LlamaModel = await l.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize,
    batchSize: contextSize,
    sequences: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    ...(adapterPath ? { lora: { adapters: [{ filePath: adapterPath, scale: 1 }] } } : {}),
  });
  const sequence = context.getSequence();
  const logProbs = async (ids: readonly number[]): Promise<Float64Array[]> => {
    await sequence.clearHistory();
    const out = await sequence.controlledEvaluate(
      ids.map((id) => [id, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }] as const) as never,
    );
    return out.map((o, t) => {
      // topK 0: every token of the vocabulary, so the map's size is the vocabulary's.
      const p = o?.next?.probabilities;
      if (!p) throw new Error(`llama.cpp gave no probabilities at position ${t}`);
      const lp = new Float64Array(p.size).fill(-Infinity);
      for (const [token, prob] of p) lp[Number(token)] = Math.log(prob);
      return lp;
    });
  };
  return {
    tokenize: (text) => model.tokenize(text, false).map(Number),
    logProbs,
    async perplexity(ids, seqLen, stride) {
      let nll = 0;
      let tokens = 0;
      let prevEnd = 0;
      for (let begin = 0; prevEnd < ids.length; begin += stride) {
        const end = Math.min(begin + seqLen, ids.length);
        const lp = await logProbs(ids.slice(begin, end));
        for (let j = Math.max(prevEnd, begin + 1); j < end; j++) {
          nll -= lp[j - 1 - begin][ids[j]];
          tokens++;
        }
        prevEnd = end;
      }
      return { ppl: Math.exp(nll / tokens), tokens };
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}
