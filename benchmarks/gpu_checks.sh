#!/usr/bin/env bash
# The GPU checks of this project in one short run (for a session that is lent a GPU):
#   bash benchmarks/gpu_checks.sh [OUT_DIR]
# Prints, side by side on the same card: the B-224 model benchmark (fp32, fp16), the tracker
# benchmark (fp32, fp16, fp16 + torch.compile; batched-vs-sequential throughput ratio) and the
# tracker's fp16 / compiled boxes vs fp32 (tests/test_tracker_compile.py on cuda).
# Each part is time-limited so one slow part cannot eat the whole device budget.
set -u
out="${1:-${OUT:-gpu_checks_out}}"
mkdir -p "$out"
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
run() {  # run NAME SECONDS CMD...
    local name="$1" seconds="$2"
    shift 2
    echo "=== $name"
    timeout "$seconds" "$@" 2>&1 | tee "$out/$name.txt" | grep -v -i "warning" | tail -25
    echo "=== $name: exit ${PIPESTATUS[0]}"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
run model_fp32 90 python benchmarks/bench_model.py --device cuda --dtype float32 --rounds 20 --skip-counts
run model_fp16 90 python benchmarks/bench_model.py --device cuda --dtype float16 --rounds 20 --skip-counts
run tracker_fp32 100 python benchmarks/bench_tracker.py --device cuda --quick
run tracker_fp16 100 python benchmarks/bench_tracker.py --device cuda --dtype float16 --quick
run tracker_fp16_compile 180 python benchmarks/bench_tracker.py --device cuda --dtype float16 --compile --quick
LORAT_TEST_DEVICE=cuda run tests_cuda 120 python -m pytest -q -p no:cacheprovider tests/test_tracker_compile.py
