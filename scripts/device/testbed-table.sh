#!/usr/bin/env bash
# The testbed's reproduction table in one device call (issue 24): our CLI on the GPU for every
# row (quantize → eval → train → eval), the torch reference (scripts/testbed/reference.py)
# at the same time, then the Markdown table (scripts/testbed/summarize_table.py) on stdout
# and in $OUT/table.md.
#
#   here:   node scripts/build-cli.mjs && bash ../shared/device/pack.sh dist node_modules/node-api-headers
#   device: source .device/enter.sh && bash scripts/device/testbed-table.sh MODEL_DIR [ours|reference|all]
#           (carry [".device"]; MODEL_DIR in the tree, e.g. assets/testbed-model)
#
# Rows: bits 2 3 4 × rank 16 64 × qlora, loftq (T = 1), loftq (T = 5), cloq with --calib-data
# the fine-tuning split (only when the CLI knows --method cloq; otherwise the table says so). alpha = rank (s = 1), NF quantizer,
# block 64, the CLI's default SVD. Fine-tuning, the same for every row and for the
# reference: assets/testbed-data/finetune.txt, $STEPS steps, batch $BATCH, seq $SEQ, peak lr $LR,
# warm-up $WARMUP then cosine to 0, seed $SEED (no hold-out: --eval-data names the evaluation
# split with --eval-every 0, so every row of the fine-tuning text trains and nothing is
# evaluated during training). Perplexity: assets/testbed-data/eval.txt, window 512 / stride 256.
# Our rows run $JOBS at a time (each a Node process of its own on the one GPU).
# "ours" or "reference" runs one half (two calls if one is too long); "all" (default) both.
set -u
MODEL=${1:?usage: testbed-table.sh MODEL_DIR [ours|reference|all]}
PART=${2:-all}
OUT=${OUT:-/tmp/testbed-table}
WORK=${TESTBED_WORK:-/tmp/testbed-work}
STEPS=${STEPS:-200} BATCH=${BATCH:-4} SEQ=${SEQ:-512} LR=${LR:-5e-4} WARMUP=${WARMUP:-10} SEED=${SEED:-0}
JOBS=${JOBS:-8} DEVICE=${DEVICE:-cuda}
FT=${FT:-assets/testbed-data/finetune.txt}
EV=${EV:-assets/testbed-data/eval.txt}
EVAL_SEQ=${EVAL_SEQ:-512} EVAL_STRIDE=${EVAL_STRIDE:-256}
mkdir -p "$OUT" "$WORK/runs"
LOG=$OUT/testbed-table.log
. "$(dirname "$0")/stage.sh"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

METHODS="qlora loftq1 loftq5"
if node dist/cli.cjs --help 2>/dev/null | grep -q cloq; then METHODS="$METHODS cloq"; CLOQ=known; else CLOQ=unknown; fi
echo "cloq: $CLOQ to the CLI" | tee -a "$LOG"

# One row of ours: RUN_NAME METHOD BITS RANK. Writes $WORK/runs/NAME.{quantize,init,train,after}.json.
row() {
  local name=$1 method=$2 bits=$3 rank=$4 run=$WORK/runs/$1 m iters calib=
  case $method in loftq1) m=loftq; iters=1;; loftq5) m=loftq; iters=5;; *) m=$method; iters=5;; esac
  # The calibrated init's calibration text: the fine-tuning split (the CLI's defaults: its first
  # 4096 tokens in windows of 512, damping 0.01, GPTQ rounding; the reference uses the same).
  [ "$m" = cloq ] && calib="--calib-data $FT"
  local r=$WORK/runs/$name
  node dist/cli.cjs quantize "$MODEL" --out "$run" --force --method "$m" --bits "$bits" --rank "$rank" --alpha "$rank" \
    --iters "$iters" --device "$DEVICE" --json $calib ${QUANTIZE_EXTRA:-} > "$r.quantize.jsonl" 2> "$r.err" &&
  node dist/cli.cjs eval "$run" --data "$EV" --seq-len "$EVAL_SEQ" --stride "$EVAL_STRIDE" --device "$DEVICE" --json > "$r.init.jsonl" 2>> "$r.err" &&
  node dist/cli.cjs train "$run" --data "$FT" --eval-data "$EV" --eval-every 0 --steps "$STEPS" --batch "$BATCH" --seq-len "$SEQ" \
    --lr "$LR" --warmup "$WARMUP" --seed "$SEED" --checkpoint-every 0 --device "$DEVICE" --json > "$r.train.jsonl" 2>> "$r.err" &&
  node dist/cli.cjs eval "$run" --data "$EV" --seq-len "$EVAL_SEQ" --stride "$EVAL_STRIDE" --device "$DEVICE" --json > "$r.after.jsonl" 2>> "$r.err"
  local rc=$?
  echo "$name rc=$rc" >> "$LOG"
  return $rc
}
export -f row
export EVAL_SEQ EVAL_STRIDE MODEL WORK STEPS BATCH SEQ LR WARMUP SEED DEVICE FT EV LOG

ours() {
  for bits in ${BITS:-2 3 4}; do for rank in ${RANKS:-16 64}; do for m in $METHODS; do echo "$m-b$bits-r$rank $m $bits $rank"; done; done; done |
    xargs -P "$JOBS" -L 1 bash -c 'row "$@"' _
}
reference() {
  python3 scripts/testbed/reference.py "$MODEL" --out "$WORK/reference.json" --engine-runs "$WORK/runs" \
    --steps "$STEPS" --batch "$BATCH" --seq-len "$SEQ" --lr "$LR" --warmup "$WARMUP" --seed "$SEED" \
    --finetune "$FT" --eval "$EV" --eval-seq "$EVAL_SEQ" --eval-stride "$EVAL_STRIDE"
}

# The CUDA addon (git-ignored): built here on the GPU machine unless it is already there.
if [ "$DEVICE" = cuda ] && [ ! -f native/build/loftq_cuda.node ]; then
  stage build env LOFTQ_CUDA_ARCHS=${LOFTQ_CUDA_ARCHS:-90} node scripts/build-native.mjs || exit 1
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; node --version;
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'; } >> "$LOG" 2>&1
case $PART in
  ours) stage ours ours ;;
  reference) stage reference reference ;;
  # Both at once (the summary compares their per-matrix errors afterwards).
  all) stage ours ours & stage reference reference; wait ;;
  *) echo "unknown part $PART" >&2; exit 2 ;;
esac
grep -h . "$WORK"/runs/*.err 2>/dev/null | grep -v '^$' | tail -20 >> "$LOG"
python3 scripts/testbed/summarize_table.py "$WORK" --cloq "$CLOQ" --steps "$STEPS" --batch "$BATCH" --seq "$SEQ" --lr "$LR" \
  --warmup "$WARMUP" --seed "$SEED" --eval-data "$EV" --eval-seq "$EVAL_SEQ" --eval-stride "$EVAL_STRIDE" --finetune-data "$FT" --device "$DEVICE" | tee "$OUT/table.md"
cp "$WORK/reference.json" "$OUT/" 2>/dev/null
tar czf "$OUT/ours.tgz" -C "$WORK/runs" $(cd "$WORK/runs" && ls *.jsonl *.err 2>/dev/null) $(cd "$WORK/runs" && ls -d */layers.json */run.json 2>/dev/null) 2>/dev/null
true
