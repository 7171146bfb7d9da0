// What `loftq --help` and `loftq <command> --help` print: each command's synopsis (the README's
// synopsis is these lines) and, for the command's own help, what its options mean.

export const COMMAND_NAMES = ['inspect', 'quantize', 'eval', 'train', 'export', 'profile', 'serve', 'demo'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export const SYNOPSIS: Record<CommandName, string> = {
  inspect: `inspect MODEL_DIR [--json]`,
  quantize: `quantize MODEL_DIR --out RUN_DIR [--method loftq|qlora] [--bits 4|3|2|8] [--bits-map SPEC]
         [--quant nf|uniform|q4_0|q8_0] [--block 64] [--rank 16|auto] [--alpha 16] [--rslora] [--iters 5]
         [--svd randomized|exact] [--targets all-linear|q_proj,v_proj,...] [--device auto|cpu|cuda]
         [--seed N] [--budget BITS --profile FILE [--scaling S]] [--force] [--json]`,
  eval: `eval MODEL_OR_RUN_DIR --data FILE [--field NAME] [--seq-len N] [--stride N] [--max-tokens N]
     [--device auto|cpu|cuda] [--precision bf16|fp32] [--batch N] [--json]`,
  train: `train RUN_DIR --data FILE [--field NAME] [--eval-data FILE] [--steps N] [--lr X] [--batch N]
      [--seq-len N] [--eval-every N] [--warmup N] [--accum N] [--checkpoint-every N] [--seed N]
      [--device auto|cpu|cuda] [--precision bf16|fp32] [--json]`,
  export: `export RUN_DIR --format peft|gguf|merged --out DIR [--force] [--json]`,
  profile: `profile MODEL_DIR --out FILE [--quant nf|uniform|q4_0|q8_0] [--block 64] [--max-rank 64]
        [--targets ...] [--device auto|cpu|cuda] [--seed N] [--force] [--json]`,
  serve: `serve [--port N] [--new-token] [--host 127.0.0.1] [--runs DIR]`,
  demo: `demo [--runs DIR] [--json]`,
};

const DETAILS: Record<CommandName, string> = {
  inspect: `Lists a Hugging Face model folder's architecture and the matrices quantize would target.`,
  quantize: `Quantizes the model's target matrices with a LoRA initialization into a run directory.
  --method       loftq (alternating quantize / low-rank, default) or qlora (Q = q(W), B = 0)
  --bits         bits of every matrix no --bits-map rule changes (default 4)
  --bits-map     comma-separated SELECTOR=BITS rules over --bits, later rules win; selectors:
                 first:K, layers:A-B, attn, mlp, q_proj..down_proj, a module path; join with /.
                 e.g. --bits 2 --bits-map first:4=4   (the LoftQ paper's mixed precision)
  --quant        nf (NormalFloat, default), uniform, or llama.cpp's q4_0 / q8_0 (block 32);
                 --quant ggml with --bits-map mixes q4_0 and q8_0
  --block        values per absmax block (default 64)
  --rank         LoRA rank r (default 16); auto lets the planner choose it (needs --budget)
  --alpha        LoRA alpha (default: the rank, so s = alpha/r = 1); --rslora uses alpha/√r
  --iters        at most T LoftQ steps (default 5, at most 100): the best step is kept
  --svd          randomized (default) or exact
  --targets      all-linear (default) or a list of modules
  --device       auto (the GPU when one answers, default), cpu or cuda
  --budget       average bits per weight, adapter included: the planner picks bits per matrix
                 (and with --rank auto the rank) from --profile FILE (written by loftq profile);
                 with --rank auto, alpha = r, or --scaling S keeps s = alpha/r at S
  --force        replace an earlier run in RUN_DIR`,
  eval: `Measures perplexity with the sliding window: a model folder, or a run's full precision,
quantized Q and Q + adapter.
  --data         .txt, .jsonl or .parquet (the text field, or --field NAME)
  --seq-len      window (default min(1024, the model's context)); --stride (default half of it)
  --max-tokens   evaluate only the first N tokens
  --device       auto, cpu or cuda; --precision bf16 (default on Ampere+) or fp32 on a GPU
  --batch        windows per batch (default 1 on the CPU, about 8192 tokens on a GPU)`,
  train: `Fine-tunes a run's LoRA adapter on its quantized backbone; Ctrl-C stops after a checkpoint,
and the same command resumes exactly.
  --data         training text (.txt, .jsonl, .parquet; --field NAME); --eval-data FILE holds
                 out a separate file (default: the last rows of --data)
  --steps --lr --batch --seq-len --warmup --accum   the optimizer's schedule (AdamW, cosine)
  --eval-every N held-out perplexity every N steps; --checkpoint-every N
  --device       auto, cpu or cuda; --precision bf16 (default on a GPU) or fp32`,
  export: `Writes a run as a PEFT adapter with its backbone (peft), llama.cpp's GGUF files (gguf), or
the merged model (merged) into DIR.`,
  profile: `Profiles a model for the planner: per matrix and bit width ‖W − q(W)‖ and the leading
singular values of W − q(W); prints the predicted mean error by bits and rank (QLoRA: ‖W − Q‖;
LoftQ: one alternating step). loftq quantize --budget plans a run from FILE.
  --max-rank     singular values kept per matrix (default 64, at most 512)`,
  serve: `Serves the dashboard and the engine on localhost. The port and the access token are kept in
the user's config folder ($XDG_CONFIG_HOME/loftq-studio, or ~/.config/loftq-studio), so open tabs
reconnect after a restart.
  --port N       listen on N and remember it (0: any free port)
  --new-token    make a new access token (tabs opened with the old one must reopen the URL)
  --host         127.0.0.1 by default; 0.0.0.0 exposes it (the token still guards it)
  --runs DIR     the runs folder (default ./runs)`,
  demo: `Quantizes the bundled demo model with QLoRA and LoftQ at 2 and 4 bits, compares the errors,
then evaluates and briefly fine-tunes the 2-bit runs.`,
};

export function commandHelp(name: CommandName): string {
  return `usage: loftq ${SYNOPSIS[name]}\n\n${DETAILS[name]}\n`;
}

export function globalHelp(): string {
  const lines = COMMAND_NAMES.map((n) => `  ${SYNOPSIS[n].replace(/\n/g, '\n  ')}`);
  return `usage: loftq <command> [options]\n\n${lines.join('\n')}\n\nloftq <command> --help says what a command's options mean.\n`;
}
