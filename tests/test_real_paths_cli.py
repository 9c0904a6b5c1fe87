"""The ``lorat`` console script as a newcomer meets it: ``--help`` without loading torch/transformers,
help texts without reStructuredText markup, the package registered with transformers whatever the
import order, and a thread count that does not oversubscribe the cores for small models."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest
import torch
from realpath_fixtures import executable

from modeling_lorat import cpu_threads
from modeling_lorat.cli import build_parser
from modeling_lorat.cli import main as cli_main

pytestmark = pytest.mark.realpath


def _imported(stderr: str) -> set[str]:
    """Top-level module names in a ``-X importtime`` report."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_lorat_help_does_not_import_torch_or_transformers():
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    done = subprocess.run(
        [executable("lorat"), "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    assert "track" in done.stdout and "evaluate" in done.stdout and "demo" in done.stdout
    imported = _imported(done.stderr)
    assert "modeling_lorat" in imported  # the report is real
    assert not imported & {"torch", "transformers", "peft", "accelerate", "datasets"}
    for command in ("track", "evaluate", "convert"):
        sub = subprocess.run(
            [executable("lorat"), command, "--help"], env=env, capture_output=True, text=True, timeout=120
        )
        assert sub.returncode == 0 and not _imported(sub.stderr) & {"torch", "transformers"}, command


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_help_text_is_plain_and_every_command_is_described():
    for name, parser in _subcommands().items():
        text = parser.format_help()
        assert "`" not in text, (name, [line for line in text.splitlines() if "`" in line])
        assert parser.description and len(parser.description) > 30, name


def test_evaluate_dataset_help_lists_every_benchmark_reader():
    from modeling_lorat.data import DATASET_NAMES

    help_text = next(a.help for a in _subcommands()["evaluate"]._actions if "--dataset" in a.option_strings)
    for name in DATASET_NAMES:
        if name != "coco":  # one-frame training data, not a tracking benchmark
            assert name in help_text, name


@pytest.mark.parametrize("first", ["package", "transformers", "peft", "submodule", "tracker"])
def test_model_type_and_pipeline_are_registered_in_any_import_order(first):
    imports = {
        "package": "import modeling_lorat\nimport transformers",
        "transformers": "import transformers\nimport modeling_lorat",
        "peft": "import modeling_lorat\nimport peft\nimport transformers",
        # transformers first imported half-way through one of the package's own modules
        "submodule": "import modeling_lorat\nfrom modeling_lorat.tracking_lorat import LoratTracker",
        "tracker": "from modeling_lorat.tracking_lorat import LoratTracker",
    }[first]
    code = (
        f"{imports}\nfrom transformers import AutoConfig\nfrom transformers.pipelines import PIPELINE_REGISTRY\n"
        "print(type(AutoConfig.for_model('lorat')).__name__, "
        "'single-object-tracking' in PIPELINE_REGISTRY.supported_tasks)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["LoratConfig", "True"]


def _config(folder, hidden: int, layers: int):
    folder.mkdir()
    backbone = {"hidden_size": hidden, "num_hidden_layers": layers, "mlp_ratio": 4}
    (folder / "config.json").write_text(json.dumps({"model_type": "lorat", "backbone_config": backbone}))
    return folder


def test_default_threads_one_for_small_models_else_the_free_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_threads, "usable_cores", lambda: 8)
    monkeypatch.setattr(cpu_threads.os, "getloadavg", lambda: (2.6, 0.0, 0.0))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    demo_size, small = _config(tmp_path / "demo", 128, 4), _config(tmp_path / "s", 384, 12)
    assert cpu_threads.backbone_parameters(demo_size) == 4 * 128 * 128 * 12
    assert cpu_threads.default_threads(demo_size) == 1
    assert cpu_threads.default_threads(small) == 5  # 8 cores, 2.6 busy
    assert cpu_threads.default_threads(tmp_path / "missing") == 5  # unknown size: the free cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two evaluation processes share them
    assert cpu_threads.default_threads(small) == 2
    monkeypatch.setattr(cpu_threads.os, "getloadavg", lambda: (30.0, 0.0, 0.0))
    assert cpu_threads.default_threads(small) == 1


def test_track_sets_the_threads_and_respects_omp_num_threads(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        Image.new("RGB", (48, 40), (40 * i, 90, 120)).save(frames / f"{i:04d}.png")
    args = ["track", str(frames), "--box", "5,5,20,20", "--model", str(tiny_checkpoint), "--device", "cpu"]
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        torch.set_num_threads(2)
        assert cli_main(args) == 0
        assert torch.get_num_threads() == 1  # the tiny model: one thread
        assert cli_main([*args, "--threads", "2"]) == 0
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's setting stands
        assert cli_main(args) == 0
        assert torch.get_num_threads() == 2
        capsys.readouterr()
        assert cli_main([*args, "--threads", "0"]) == 2
        assert capsys.readouterr().err.strip() == "lorat track: error: --threads must be >= 1, got 0"
    finally:
        torch.set_num_threads(1)
