#!/usr/bin/env bash
# The whole GPU check in one call of the device tool (docs/BENCHMARKS.md, "GPU"):
# build the addon, run the CUDA tests, then benchmark against PyTorch measured in the same
# run: one 4096x11008 matrix, and a LLaMA-2-7B-shaped model end to end with `loftq quantize
# --device cuda`, re-checked in float64 from its files. Stages run even if an earlier one
# failed; everything lands in $OUT (gpu-check.log, test-cuda.log, results.json).
#
#   bash ../shared/device/pack.sh dist node_modules/node-api-headers $(node scripts/device/vitest-closure.mjs)
#   device: source .device/enter.sh && bash scripts/device/gpu-check.sh [--skip-tests] [--skip-model]
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
WORK=${GPU_CHECK_WORK:-/tmp/gpu-check-work}
mkdir -p "$WORK"
LOG=$OUT/gpu-check.log
. "$(dirname "$0")/stage.sh"
skip_tests=0; skip_model=0
for a in "$@"; do
  [ "$a" = --skip-tests ] && skip_tests=1
  [ "$a" = --skip-model ] && skip_model=1
done

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv; nvcc --version | tail -1; node --version;
  python3 -c 'import torch; print("torch", torch.__version__)'; nproc; free -g | head -2; df -h /tmp | tail -1; } >> "$LOG" 2>&1

stage build env LOFTQ_CUDA_ARCHS=${LOFTQ_CUDA_ARCHS:-90} node scripts/build-native.mjs
stage device node dist/bench-loftq-matrix.cjs --device cuda --size 256 --skip-exact --repeat 1 --json

if [ $skip_tests = 0 ]; then
  LOFTQ_REQUIRE_CUDA=1 stage test-cuda sh -c "node node_modules/vitest/vitest.mjs run -c vitest.cuda.config.ts --reporter=verbose > $OUT/test-cuda.log 2>&1; rc=\$?; tail -n 40 $OUT/test-cuda.log; exit \$rc"
fi

stage models python3 scripts/device/make_models.py "$WORK/models" $([ $skip_model = 1 ] && echo --matrix-only)
M=$WORK/models
stage ops sh -c "node dist/bench-device-ops.cjs --device cuda | tee $WORK/ops.json"
stage ours-matrix sh -c "node dist/bench-loftq-matrix.cjs --device cuda --matrix $M/matrix.safetensors --bits 2 --rank 64 --iters 5 --repeat 5 --json | tee $WORK/ours-matrix.json"
stage torch-matrix sh -c "python3 scripts/device/torch_loftq.py matrix $M/matrix.safetensors --bits 2 --rank 64 --iters 5 | tee $WORK/torch-matrix.json"

if [ $skip_model = 0 ]; then
  stage floor sh -c "python3 scripts/device/read_floor.py $M/llama7b | tee $WORK/floor.json"
  rm -rf "$WORK/run7b"
  t0=$(now)
  stage run7b sh -c "node dist/cli.cjs quantize $M/llama7b --out $WORK/run7b --device cuda --method loftq --bits 2 --rank 64 --iters 5 --json > $WORK/run7b-events.jsonl; rc=\$?; tail -n 3 $WORK/run7b-events.jsonl | cut -c1-2000; exit \$rc"
  echo "{\"seconds\": $(elapsed "$t0")}" > "$WORK/run7b-wall.json"
  cp "$WORK/run7b/run.json" "$WORK/run7b.json" 2>/dev/null
  stage verify sh -c "python3 scripts/device/verify_run.py $WORK/run7b $M/llama7b | tee $WORK/verify.json"
  stage torch-model sh -c "python3 scripts/device/torch_loftq.py model $M/llama7b --bits 2 --rank 64 --iters 5 | tee $WORK/torch-model.json"
  # llama.cpp's q4_0 (what `export --format gguf` writes as it is), LoftQ on the GPU, re-checked in float64.
  rm -rf "$WORK/run7b-q4_0"
  stage run7b-q4_0 sh -c "node dist/cli.cjs quantize $M/llama7b --out $WORK/run7b-q4_0 --device cuda --method loftq --quant q4_0 --rank 64 --iters 5 --json > $WORK/run7b-q4_0-events.jsonl; rc=\$?; tail -n 1 $WORK/run7b-q4_0-events.jsonl | cut -c1-2000; exit \$rc"
  stage verify-q4_0 sh -c "python3 scripts/device/verify_run.py $WORK/run7b-q4_0 $M/llama7b | tee $WORK/verify-q4_0.json"
  cp "$WORK/run7b-q4_0/run.json" "$OUT/run7b-q4_0-run.json" 2>/dev/null
fi

echo "=== summary" | tee -a "$LOG"
python3 scripts/device/summarize.py "$WORK" | tee -a "$LOG"
cp "$WORK/results.json" "$OUT/" 2>/dev/null
cp "$WORK/run7b/layers.json" "$OUT/run7b-layers.json" 2>/dev/null
cp "$WORK/run7b/run.json" "$OUT/run7b-run.json" 2>/dev/null
true
