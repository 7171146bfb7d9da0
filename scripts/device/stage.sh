# Sourced by the device scripts (gpu-check.sh, gpu-forward.sh), after they set LOG:
# `stage NAME CMD...` runs CMD with its output into $LOG, then prints (and logs) its exit status
# and time, so the device tool's reply shows one line per stage.
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
stage() {
  local name=$1; shift
  echo "=== $name: $*" >> "$LOG"
  local t0; t0=$(now)
  "$@" >> "$LOG" 2>&1
  local rc=$?
  echo "=== $name: rc=$rc in $(elapsed "$t0") s" | tee -a "$LOG"
  return $rc
}
