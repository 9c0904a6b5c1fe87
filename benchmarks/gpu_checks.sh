#!/usr/bin/env bash
# The GPU checks of this project in one short run (for a session that is lent a GPU):
#   bash benchmarks/fetch_device_wheels.sh                      # here: transformers/peft pins -> .whl/
#   git -C LoRAT-checkout archive HEAD trackit | tar -x -C .official   # the official code, -> .official/
#   run(carry=[".whl", ".official"], timeout_s=540, command="bash benchmarks/gpu_checks.sh $OUT")
# Prints, measured side by side on the same card in this one run: the official LoRAT model vs ours
# (forward batch 1/32 for B-224 and L-224, kernels per forward, CUDA-graph and compiled batch-1 forward,
# the batch-64 training step with peak memory), the tracker end to end on 1280x720 frames (fused eager,
# CUDA graphs; overhead; 8 batched vs sequential) and `accelerate launch training/train.py` throughput,
# then the CUDA tests. Each part has its own time limit; logs go to OUT_DIR.
# WHEELS and OFFICIAL override where the wheels and the official checkout are.
set -u
cd "$(dirname "$0")/.."
out="${1:-gpu_checks_out}"
wheels="${WHEELS:-.whl}"
official="${OFFICIAL:-.official}"
mkdir -p "$out"
if ls "$wheels"/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$wheels"/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
run() {  # run NAME SECONDS CMD...
    local name="$1" seconds="$2"
    shift 2
    echo "=== $name"
    local start=$SECONDS
    timeout "$seconds" "$@" >"$out/$name.txt" 2>&1
    local rc=$?
    grep -v -i -E "warn|^ *$|^  " "$out/$name.txt" | tail -40
    echo "=== $name: exit $rc, $((SECONDS - start)) s"
}
run vs_official 200 python3 benchmarks/bench_vs_official.py --official "$official"
run tracker_fused 60 python3 benchmarks/bench_tracker.py --device cuda --dtype float16 --skip-long-video
run tracker_graphs 60 python3 benchmarks/bench_tracker.py --device cuda --dtype float16 --cuda-graphs --skip-long-video
LORAT_TEST_DEVICE=cuda run tests_cuda 90 python3 -m pytest -q -p no:cacheprovider tests/test_inference_fast_path.py tests/test_tracker_compile.py
run train_script 120 bash benchmarks/train_throughput.sh /tmp/train_throughput
run vs_official_compiled 150 python3 benchmarks/bench_vs_official.py --official "$official" --sections graphs,train --presets b-224 --compile
run train_script_compiled 200 bash benchmarks/train_throughput.sh /tmp/train_throughput_compiled 60 --torch_compile
