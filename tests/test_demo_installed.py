"""`lorat demo` from a regular (non-editable) install: the package is built and installed into a folder
of its own and the demo runs from a directory outside the repository, so nothing can come from the clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_from_a_regular_install(tmp_path):
    site = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    assert (site / "training" / "train.py").is_file() and (site / "training" / "configs").is_dir()
    assert not (site / "modeling_lorat" / "__editable__").exists()
    work = tmp_path / "run"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    probe = "import modeling_lorat, training.train as t; print(modeling_lorat.__file__); print(t.__file__)"
    where = subprocess.run([sys.executable, "-c", probe], cwd=work, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout
    args = ["demo", "--workdir", "out", "--train-steps", "2", "--test-sequences", "1", "--test-frames", "6"]
    result = subprocess.run(
        [sys.executable, "-m", "modeling_lorat.cli", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert (work / "out" / "model" / "adapter_model.safetensors").is_file()
    summary = json.loads((work / "out" / "eval" / "lorat" / "summary.json").read_text())
    assert summary["num_evaluated"] == 1
