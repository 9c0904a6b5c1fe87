#!/usr/bin/env bash
# Download the wheels the GPU machine's image lacks (its transformers/peft are older than our pins)
# into .whl/ (git-ignored), for `run(carry=[".whl"], command="bash benchmarks/gpu_checks.sh")`.
# Run here, in the repo root, where pip can reach the package index. The GPU image runs Python 3.12.
set -euo pipefail
cd "$(dirname "$0")/.."
pins=$(grep -E '^(transformers|peft)==' constraints.txt)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl $pins
ls -la .whl
