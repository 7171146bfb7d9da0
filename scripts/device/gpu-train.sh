#!/usr/bin/env bash
# The GPU training checks in one call of the device tool (issue 9; docs/BENCHMARKS.md "GPU
# training", docs/CROSSCHECKS.md): build the addon; LoRA gradients against transformers +
# PEFT autograd on a TinyLlama-shaped model (fp32 and bf16); the largest batch × seq of a
# 7B-shaped 2-bit LoftQ run's training that fits in 24 GB; a short fine-tuning of that run
# with `loftq train`, once straight through and once interrupted (SIGINT) and resumed, the
# two adapters compared byte for byte; and `loftq demo` on the GPU.
# Stages run even if an earlier one failed; everything lands in $OUT.
#
#   bash ../shared/device/pack.sh dist node_modules/node-api-headers $(node scripts/device/vitest-closure.mjs)
#   device: source .device/enter.sh && bash scripts/device/gpu-train.sh [--skip-grads] [--skip-fit] [--skip-finetune] [--skip-demo]
# (FIT_BATCHES_2048 / FIT_BATCHES_4096 override the batch sizes tried.)
set -u
OUT=${OUT:-/tmp/gpu-train}
mkdir -p "$OUT"
WORK=${GPU_CHECK_WORK:-/tmp/gpu-train-work}
mkdir -p "$WORK"
LOG=$OUT/gpu-train.log
. "$(dirname "$0")/stage.sh"
skip() { case " $ARGS_ " in *" $1 "*) return 0;; esac; return 1; }
ARGS_="$*"
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv; nvcc --version | tail -1; node --version;
  python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)'; } >> "$LOG" 2>&1

stage build env LOFTQ_CUDA_ARCHS=${LOFTQ_CUDA_ARCHS:-90} node scripts/build-native.mjs
M=$WORK/models
if [ ! -f "$M/llama7b/config.json" ] || [ ! -f "$M/tinyllama/config.json" ]; then stage models python3 scripts/device/make_models.py "$M"; fi

if ! skip --skip-grads; then
# LoRA gradients: the fp TinyLlama-shaped model + a random r16 adapter on all linear modules, 2 × 512 tokens.
stage grads-adapter python3 scripts/device/peft_grads.py make "$M/tinyllama" "$WORK/tiny-adapter" --rank 16
stage grads-dump node dist/bench-train-gpu.cjs --model "$M/tinyllama" --adapter "$WORK/tiny-adapter" --precision fp32,bf16 --seq 512 --batch 2 --dump-grads "$WORK/grads"
stage grads-check sh -c "python3 scripts/device/peft_grads.py check $M/tinyllama $WORK/tiny-adapter --dump $WORK/grads | tee $WORK/grads-check.json"
fi

# The 7B-shaped 2-bit LoftQ run (the demo's tokenizer, whose ids fit its vocabulary, so that `loftq train` can read text).
cp assets/demo-model/tokenizer.json assets/demo-model/tokenizer_config.json "$M/llama7b/"
RUN=$WORK/run7b
rm -rf "$RUN"
stage quantize-7b sh -c "node dist/cli.cjs quantize $M/llama7b --out $RUN --device cuda --method loftq --bits 2 --rank 16 --iters 1 --json | tail -n 1 | cut -c1-300"

# Largest batch × seq in 24 GB: what the process holds on the device after the steps (the
# pool keeps the peak reserved, plus context and libraries), batch growing until it no longer fits.
if ! skip --skip-fit; then
  for seq in 2048 4096; do
    [ $seq = 2048 ] && batches=${FIT_BATCHES_2048:-1 2 4 8 10 12 16} || batches=${FIT_BATCHES_4096:-1 2 4 5 6 8}
    for batch in $batches; do
      f=$WORK/fit-$batch-$seq.json
      stage "fit-$batch-$seq" sh -c "node dist/bench-train-gpu.cjs --run $RUN --seq $seq --batch $batch --repeat 1 --json | tee $f"
      python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r['held_bytes'] <= 24 * 2**30 else 1)" "$f" 2>/dev/null || break
    done
  done
fi

# A short fine-tuning, straight through (a) and interrupted + resumed (b), from the same run.
if ! skip --skip-finetune; then
  TRAIN_ARGS="--data assets/demo-data/train.txt --steps 30 --seq-len 512 --batch 8 --lr 1e-3 --warmup 3 --eval-every 10 --checkpoint-every 5 --device cuda --json"
  rm -rf "$WORK/run7b-a" "$WORK/run7b-b"
  cp -r "$RUN" "$WORK/run7b-a"
  cp -r "$RUN" "$WORK/run7b-b"
  stage finetune-a sh -c "node dist/cli.cjs train $WORK/run7b-a $TRAIN_ARGS > $WORK/finetune-a.jsonl 2> $WORK/finetune-a.err; rc=\$?; tail -n 1 $WORK/finetune-a.jsonl | cut -c1-400; exit \$rc"
  # Ctrl-C once step 12 is logged: the run checkpoints its last finished step and stops.
  stage finetune-b-interrupted sh -c "node dist/cli.cjs train $WORK/run7b-b $TRAIN_ARGS > $WORK/finetune-b1.jsonl 2> $WORK/finetune-b1.err & pid=\$!;
    for i in \$(seq 1 600); do grep -q '\"step\":12,' $WORK/finetune-b1.jsonl 2>/dev/null && break; sleep 0.2; done; kill -INT \$pid; wait \$pid; echo \"exit \$?\"; tail -n 2 $WORK/finetune-b1.jsonl | cut -c1-300"
  stage finetune-b-resumed sh -c "node dist/cli.cjs train $WORK/run7b-b $TRAIN_ARGS > $WORK/finetune-b2.jsonl 2> $WORK/finetune-b2.err; rc=\$?; tail -n 1 $WORK/finetune-b2.jsonl | cut -c1-400; exit \$rc"
  sha256sum "$WORK/run7b-a/adapter/adapter_model.safetensors" "$WORK/run7b-b/adapter/adapter_model.safetensors" | tee "$WORK/finetune-sha256.txt" >> "$LOG"
fi

if ! skip --skip-demo; then
  rm -rf "$WORK/demo-runs"
  stage demo sh -c "node dist/cli.cjs demo --runs $WORK/demo-runs > $WORK/demo.txt 2> $WORK/demo.err; rc=\$?; tail -n 12 $WORK/demo.txt; exit \$rc"
fi

echo "=== summary" | tee -a "$LOG"
python3 scripts/device/summarize_train.py "$WORK" | tee -a "$LOG"
cp "$WORK/train-results.json" "$WORK/demo.txt" "$OUT/" 2>/dev/null
tar czf "$OUT/train-stages.tgz" -C "$WORK" $(cd "$WORK" && ls *.json *.jsonl *.err *.txt 2>/dev/null) 2>/dev/null
true
