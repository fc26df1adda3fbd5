#!/usr/bin/env bash
# One call on a lent GPU machine (the `device` tool; the repository root is the working
# directory, the data travel in .devdata/, the results directory is carried in):
#   bash reproduction/gpu-call.sh "tests bench run" SECONDS
# runs the named stages in that order: the GPU tests, the throughput benchmark (until the
# budget), examples/paper-w2-momentum.toml until SECONDS (less RESERVE) have passed since the
# call began (then Ctrl-C: trials written so far are kept, the rest resume next call).
# Logs and a copy of the results database go to $OUT. BENCH_ARGS passes options to the
# benchmark, e.g. BENCH_ARGS="--models resnet-8 --channels-last" (the layout row, issue 25).
set -u
stages="${1:-tests bench run}"
budget="${2:-560}"
began=$(date +%s)
out="${OUT:-/tmp/gpu-out}"; mkdir -p "$out"
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
export SPARSEDP_DATA_DIR="$PWD/.devdata" SPARSEDP_TEST_DATA="$PWD/.devdata"
export SPARSEDP_CACHE_DIR=/tmp/sparsedp-cache
left() { echo $(( budget - ($(date +%s) - began) )); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'; } \
  2>&1 | tee "$out/machine.txt"
run_tests() {
  timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_device_engine.py \
    tests/test_pruner_contract.py tests/test_batched.py tests/test_channels_last.py 2>&1 | tail -25 | tee "$out/tests.log"
}
run_bench() {  # BENCH_ARGS: e.g. "--models resnet-8"; stops 20 s before the budget
  secs=$(( $(left) - 20 ))
  (( secs > 30 )) && timeout "$secs" python3 benchmarks/gpu_throughput.py --seconds 0.3 \
    ${BENCH_ARGS:-} --json "$out/gpu_throughput.json" 2>&1 | grep -v IndexKernel \
    | tee "$out/gpu_throughput.txt" | tail -60
}
run_study() {
  secs=$(( $(left) - ${RESERVE:-25} ))
  echo "run: $secs s from $(date -u +%H:%M:%S)" | tee -a "$out/run.log"
  if (( secs > 30 )); then
    timeout -s INT -k 20 "$secs" python3 -m sparsedp run examples/paper-w2-momentum.toml \
      2>&1 | tee -a "$out/run.log" | grep -v " trial " | tail -40
    echo "run ended $(date -u +%H:%M:%S) rc=${PIPESTATUS[0]}" | tee -a "$out/run.log"
  fi
  python3 - "$out" <<'PY'
import pathlib, shutil, sqlite3, sys
src = pathlib.Path("results/paper-w2-momentum/sparsedp.sqlite")
if src.exists():
    with sqlite3.connect(src) as a, sqlite3.connect(pathlib.Path(sys.argv[1]) / "sparsedp.sqlite") as b:
        a.backup(b)
for name in ("group-sizes.json", "eval-settings.json"):
    p = src.parent / "cache" / name
    if p.exists():
        shutil.copy(p, pathlib.Path(sys.argv[1]) / name)
PY
}
for stage in $stages; do
  case $stage in
    tests) run_tests ;;
    bench) run_bench ;;
    run) run_study ;;
  esac
done
ls -la "$out"
