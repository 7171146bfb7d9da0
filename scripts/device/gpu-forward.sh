#!/usr/bin/env bash
# The GPU forward check in one call of the device tool (issue 9; docs/BENCHMARKS.md "GPU
# forward"): build the addon, run the CUDA tests, cross-check logits and perplexity against
# Hugging Face transformers (fp32 and bf16) on a TinyLlama-shaped model and on the demo model
# with its real text, then benchmark perplexity forwards of 4-bit and 2-bit LoftQ runs of a
# 7B-shaped and a TinyLlama-shaped model against transformers bf16 measured in the same run,
# and LoRA training steps on a 2-bit run against transformers + PEFT.
# Stages run even if an earlier one failed; everything lands in $OUT.
#
#   bash ../shared/device/pack.sh dist node_modules/node-api-headers $(node scripts/device/vitest-closure.mjs)
#   device: source .device/enter.sh && bash scripts/device/gpu-forward.sh [--skip-tests] [--skip-7b] [--skip-bench] [--skip-train]
set -u
OUT=${OUT:-/tmp/gpu-forward}
mkdir -p "$OUT"
WORK=${GPU_CHECK_WORK:-/tmp/gpu-forward-work}
mkdir -p "$WORK"
LOG=$OUT/gpu-forward.log
. "$(dirname "$0")/stage.sh"
skip_tests=0; skip_7b=0; skip_bench=0; skip_train=0
for a in "$@"; do
  [ "$a" = --skip-tests ] && skip_tests=1
  [ "$a" = --skip-7b ] && skip_7b=1
  [ "$a" = --skip-bench ] && skip_bench=1
  [ "$a" = --skip-train ] && skip_train=1
done
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv; nvcc --version | tail -1; node --version;
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'; } >> "$LOG" 2>&1

stage build env LOFTQ_CUDA_ARCHS=${LOFTQ_CUDA_ARCHS:-90} node scripts/build-native.mjs
if [ $skip_tests = 0 ]; then
  LOFTQ_REQUIRE_CUDA=1 stage test-cuda sh -c "node node_modules/vitest/vitest.mjs run -c vitest.cuda.config.ts --reporter=verbose > $OUT/test-cuda.log 2>&1; rc=\$?; tail -n 40 $OUT/test-cuda.log; exit \$rc"
fi

M=$WORK/models
if [ $skip_7b = 1 ]; then stage models python3 scripts/device/make_models.py "$M" --tinyllama-only
else stage models python3 scripts/device/make_models.py "$M"; fi

# Numerics: our fp32 and bf16 against transformers' fp32 (eager) and bf16 (sdpa).
stage dump-tiny node dist/bench-forward-gpu.cjs --model "$M/tinyllama" --precision fp32,bf16 --seq 512 --batch 2 --repeat 1 --dump "$WORK/dump-tiny" --json
stage check-tiny sh -c "python3 scripts/device/hf_forward.py check $M/tinyllama --dump $WORK/dump-tiny --seq 512 --batch 2 | tee $WORK/check-tiny.json"
stage dump-demo node dist/bench-forward-gpu.cjs --model assets/demo-model --text assets/demo-data/eval.txt --precision fp32,bf16 --seq 128 --batch 16 --repeat 1 --dump "$WORK/dump-demo" --json
stage check-demo sh -c "python3 scripts/device/hf_forward.py check assets/demo-model --dump $WORK/dump-demo --seq 128 --batch 16 | tee $WORK/check-demo.json"

# Throughput and memory at seq 2048: transformers bf16 at batch 4 vs our LoftQ runs (Q + adapter, r = 16).
models="tinyllama"; [ $skip_7b = 0 ] && models="llama7b tinyllama"
[ $skip_bench = 1 ] && bench_models="" || bench_models=$models
for model in $bench_models; do
  stage "hf-$model" sh -c "python3 scripts/device/hf_forward.py bench $M/$model --seq 2048 --batch 4 | tee $WORK/hf-$model.json"
  for bits in 4 2; do
    run=$WORK/run-$model-$bits
    rm -rf "$run"
    stage "quantize-$model-$bits" sh -c "node dist/cli.cjs quantize $M/$model --out $run --device cuda --method loftq --bits $bits --rank 16 --iters 1 --json | tail -n 1 | cut -c1-400"
    # The blocked attention products (the default) and the fused kernel, side by side; batch 2 for memory.
    for case in "4 blocked" "4 fused" "2 blocked"; do
      set -- $case
      # The 2-bit batch-4 default pass is also profiled kernel by kernel (the table goes to the log).
      prof=""; [ "$bits$1$2" = "24blocked" ] && prof="--profile"
      stage "ours-$model-$bits-b$1-$2" sh -c "node dist/bench-forward-gpu.cjs --run $run --seq 2048 --batch $1 --attention $2 $prof --json | tee $WORK/ours-$model-$bits-b$1-$2.json"
    done
    rm -rf "$run"
  done
done

# Training steps (r = 16 on all linear modules, AdamW) at seq 2048: ours on a 2-bit LoftQ run vs PEFT bf16, batch 1.
if [ $skip_train = 0 ]; then
  for model in $models; do
    run=$WORK/run-$model-train
    rm -rf "$run"
    stage "quantize-$model-train" sh -c "node dist/cli.cjs quantize $M/$model --out $run --device cuda --method loftq --bits 2 --rank 16 --iters 1 --json | tail -n 1 | cut -c1-300"
    stage "peft-train-$model" sh -c "python3 scripts/device/peft_train.py $M/$model --seq 2048 --batch 1 | tee $WORK/peft-train-$model.json"
    for attention in blocked fused; do
      prof=""; [ $attention = fused ] && prof="--profile"
      stage "ours-train-$model-$attention" sh -c "node dist/bench-train-gpu.cjs --run $run --seq 2048 --batch 1 --attention $attention $prof --json | tee $WORK/ours-train-$model-$attention.json"
    done
    rm -rf "$run"
  done
fi

echo "=== summary" | tee -a "$LOG"
python3 scripts/device/summarize_forward.py "$WORK" | tee -a "$LOG"
# Few files come back from the device tool: the log, the CUDA tests' log, the summary, and the rest in one archive.
cp "$WORK/forward-results.json" "$OUT/" 2>/dev/null
tar czf "$OUT/forward-stages.tgz" -C "$WORK" $(cd "$WORK" && ls *.json) 2>/dev/null
true
