#!/usr/bin/env bash
# The GPU checks of this project in one short run (for a session that is lent a GPU):
#   bash benchmarks/fetch_device_wheels.sh          # here: transformers/peft pins -> .whl/
#   run(carry=[".whl"], timeout_s=540, command="bash benchmarks/gpu_checks.sh $OUT")
# Prints, side by side on the same card: the B-224 model benchmark (fp32, fp16), the tracker
# benchmark (fp32, fp16, fp16 + torch.compile; batched-vs-sequential throughput ratio, the >= 3x
# target of the tracking issue) and the tracker's compile / fp16 tests on cuda. Each part has its
# own time limit so one slow part cannot eat the device budget; logs go to OUT_DIR.
set -u
cd "$(dirname "$0")/.."
out="${1:-gpu_checks_out}"
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
run() {  # run NAME SECONDS CMD...
    local name="$1" seconds="$2"
    shift 2
    echo "=== $name"
    timeout "$seconds" "$@" >"$out/$name.txt" 2>&1
    local rc=$?
    grep -v -i "warn" "$out/$name.txt" | tail -20
    echo "=== $name: exit $rc"
}
run model_fp32 60 python3 benchmarks/bench_model.py --device cuda --dtype float32 --rounds 20 --skip-counts
run model_fp16 60 python3 benchmarks/bench_model.py --device cuda --dtype float16 --rounds 20 --skip-counts
run tracker_fp32 90 python3 benchmarks/bench_tracker.py --device cuda --quick --skip-long-video
run tracker_fp16 90 python3 benchmarks/bench_tracker.py --device cuda --dtype float16 --quick --skip-long-video
run tracker_fp16_compile 150 python3 benchmarks/bench_tracker.py --device cuda --dtype float16 --compile --quick --skip-long-video
LORAT_TEST_DEVICE=cuda run tests_cuda 90 python3 -m pytest -q -p no:cacheprovider tests/test_tracker_compile.py
