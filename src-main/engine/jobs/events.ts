// Progress events of engine jobs: what the CLI's --json prints line by line and what the
// app's job queue forwards to the renderer.
import type { LayerRecord, RunRecord } from '../runs/records';

export type JobEvent =
  | { type: 'start'; job: 'quantize'; run: string; matrices: number; total_params: number; device?: Record<string, unknown> }
  | { type: 'matrix'; index: number; total: number; name: string; shape: [number, number]; bits: number }
  | { type: 'step'; index: number; total: number; name: string; step: number; iters: number; err: number }
  | { type: 'layer'; index: number; total: number; layer: LayerRecord; done_params: number; total_params: number }
  | {
      type: 'eval';
      weights: 'fp' | 'q' | 'q+lora';
      done_tokens: number;
      total_tokens: number;
      /** Scored tokens per second so far. */
      tokens_per_s?: number;
      /** Device memory in use and at most so far (GPU), bytes. */
      device_memory?: { in_use: number; peak: number };
      /** Where it runs: "CPU", "NVIDIA H200 (bf16)". */
      where?: string;
    }
  | { type: 'phase'; phase: 'quantized' | 'adapter' | 'backbone' | 'export'; detail?: string }
  | {
      type: 'train';
      step: number;
      steps: number;
      loss?: number;
      lr?: number;
      grad_norm?: number;
      tokens_per_s?: number;
      eval_ppl?: number;
      /** Where it runs: "CPU", "NVIDIA H200 (bf16)". */
      where?: string;
      /** Device memory in use and at most so far (GPU), bytes. */
      device_memory?: { in_use: number; peak: number };
    }
  | { type: 'result'; run: string; record: RunRecord };

export type EventSink = (e: JobEvent) => void;
