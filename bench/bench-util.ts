// Shared pieces of the benchmarks: the memory-bandwidth floor measured in the same run,
// timing with warm-up, and synthetic weights shaped like trained ones.
import * as ort from 'onnxruntime-node';
import { OnnxGraph } from '../src-main/engine/tensor/onnx-graph';
import { OrtRuntime } from '../src-main/engine/tensor/ort-runtime';
import { parseModelConfig } from '../src-main/engine/io/hf-config';
import { LLAMA_MODULES } from '../src-main/engine/io/targets';
import type { LayerWeights, WeightSet } from '../src-main/engine/model/weights';
import { Rng } from '../src-main/engine/util/random';

/** Streaming copy bandwidth in bytes/s (read + write counted), median of a few rounds. */
export function measureCopyBandwidth(bytes = 256 * 2 ** 20): number {
  const n = bytes / 4;
  const src = new Float32Array(n).fill(1.5);
  const dst = new Float32Array(n);
  dst.set(src); // fault the pages in
  const rates: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    dst.set(src);
    rates.push((2 * bytes) / ((performance.now() - t0) / 1000));
  }
  return median(rates);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Trained-weight-like matrix: Gaussian bulk, decaying low-rank part, a few outlier columns. */
export function syntheticWeight(rows: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const std = 1 / Math.sqrt(cols);
  const w = rng.fillNormal(new Float32Array(rows * cols), 0.6 * std) as Float32Array;
  const rank = 8;
  const u = new Float32Array(rows);
  const v = new Float32Array(cols);
  for (let k = 0; k < rank; k++) {
    const sigma = 2 * std * Math.sqrt(rows) * Math.exp(-k / 3) / Math.sqrt(rank);
    rng.fillNormal(u, 1 / Math.sqrt(rows));
    rng.fillNormal(v, 1 / Math.sqrt(cols));
    for (let i = 0; i < rows; i++) {
      const s = sigma * u[i];
      const row = i * cols;
      for (let j = 0; j < cols; j++) w[row + j] += s * v[j];
    }
  }
  for (let o = 0; o < 4; o++) {
    const j = rng.nextUint32() % cols;
    for (let i = 0; i < rows; i++) w[i * cols + j] *= 5;
  }
  return w;
}

export function fmtGBs(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e9).toFixed(1)} GB/s`;
}

/**
 * ORT's MatMul rate (FLOP/s) on one large product with a small output (2048×8192 · 8192×512:
 * 17 GFLOP, 4 MB out), so it is the kernel's rate, not the output copy's: the FLOP floor of
 * the model benchmarks. Median of 5 runs after a warm-up.
 */
export async function measureMatmulRate(): Promise<number> {
  const runtime = new OrtRuntime();
  const graph = () => {
    const g = new OnnxGraph('mm');
    g.input('a', 'float32', ['m', 'k']);
    g.input('b', 'float32', ['n', 'k']);
    g.op('Gemm', ['a', 'b'], { transB: 1 }, 'c');
    g.output('c', 'float32', ['m', 'n']);
    return g;
  };
  const [M, K, N] = [2048, 8192, 512];
  const rng = new Rng(3);
  const a = rng.fillUniform(new Float32Array(M * K), -1, 1) as Float32Array;
  const b = rng.fillUniform(new Float32Array(N * K), -1, 1) as Float32Array;
  const rates: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    await runtime.run('mm', graph, { a: new ort.Tensor('float32', a, [M, K]), b: new ort.Tensor('float32', b, [N, K]) });
    if (i > 0) rates.push((2 * M * K * N) / ((performance.now() - t0) / 1000));
  }
  await runtime.dispose();
  return median(rates);
}

/**
 * A float32 weight set with TinyLlama-1.1B's shapes (hidden 2048, intermediate 5632, 32/4 heads
 * of 64, vocab 32000), uniform random values of the right scale, built in memory; with
 * `loraRank`, adapters of that rank on every projection. `params` counts the projections and
 * lm_head (the FLOPs per token are 2 × params, plus attention).
 */
export function tinyLlamaWeights(layers: number, rng: Rng, loraRank = 0): { weights: WeightSet; params: number } {
  const H = 2048, I = 5632, HEADS = 32, KV = 4, HD = 64, V = 32000;
  const config = parseModelConfig({
    model_type: 'llama', hidden_size: H, intermediate_size: I, num_hidden_layers: layers, num_attention_heads: HEADS,
    num_key_value_heads: KV, vocab_size: V, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000, torch_dtype: 'float32',
  });
  const random = (n: number, std: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = ((rng.nextUint32() / 4294967296) * 2 - 1) * std * 1.732;
    return a;
  };
  const shapes: Record<string, [number, number]> = {
    q_proj: [HEADS * HD, H], k_proj: [KV * HD, H], v_proj: [KV * HD, H], o_proj: [H, HEADS * HD], gate_proj: [I, H], up_proj: [I, H], down_proj: [H, I],
  };
  let params = V * H; // lm_head
  const layerWeights: LayerWeights[] = [];
  for (let l = 0; l < layers; l++) {
    const tensors = new Map<string, Float32Array>();
    const shapeMap = new Map<string, number[]>();
    for (const n of ['input_layernorm', 'post_attention_layernorm']) {
      tensors.set(n, new Float32Array(H).fill(1));
      shapeMap.set(n, [H]);
    }
    for (const m of LLAMA_MODULES) {
      const [o, i] = shapes[m];
      tensors.set(m, random(o * i, 1 / Math.sqrt(i)));
      shapeMap.set(m, [o, i]);
      if (loraRank > 0) {
        tensors.set(`${m}.lora_A`, random(loraRank * i, 1 / Math.sqrt(i))).set(`${m}.lora_B`, random(o * loraRank, 0.01));
        shapeMap.set(`${m}.lora_A`, [loraRank, i]).set(`${m}.lora_B`, [o, loraRank]);
      }
      params += o * i;
    }
    layerWeights.push({ tensors, shapes: shapeMap });
  }
  const weights: WeightSet = {
    config, embed: random(V * H, 0.02), layers: layerWeights, norm: new Float32Array(H).fill(1), lmHead: random(V * H, 0.02),
    lora: loraRank > 0 ? { modules: [...LLAMA_MODULES], scaling: 1 } : null,
  };
  return { weights, params };
}
