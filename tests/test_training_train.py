"""End to end: ``training/train.py`` learns, resumes exactly after a hard kill, shards data over two
processes, trains from streamed parquet, and saves an adapter that ``from_pretrained`` loads."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modeling_lorat import LoratForTracking  # noqa: E402
from modeling_lorat.data import make_synthetic_sequence, write_parquet_shards  # noqa: E402
from training.train import main, parse_args  # noqa: E402

TRAIN = ROOT / "training" / "train.py"
TINY = ["--tiny", "--train_batch_size", "2", "--dataloader_num_workers", "0", "--report_to", "none"]


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    env.pop("ACCELERATE_USE_CPU", None)
    return env


def _train(argv: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TRAIN), *argv],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def _inputs(model_dir: Path) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "pixel_values_template": torch.randn(2, 3, 28, 28),
        "pixel_values_search": torch.randn(2, 3, 56, 56),
        "template_mask": torch.tensor([[[0, 1], [1, 1]], [[1, 0], [0, 0]]]),
    }


def test_tiny_model_learns_and_saved_adapter_loads(tmp_path):
    out = tmp_path / "run"
    args = parse_args(
        [*TINY, "--train_batch_size", "4", "--output_dir", str(out), "--max_train_steps", "30"]
        + ["--learning_rate", "5e-3", "--lr_scheduler", "constant", "--lr_warmup_steps", "0"]
        + ["--checkpointing_steps", "1000"]
    )
    result = main(args)
    losses = result["losses"]
    assert result["global_step"] == 30 and len(losses) == 30 and np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses

    names = {p.name for p in out.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "config.json",
        "preprocessor_config.json",
    } <= names
    assert "model.safetensors" not in names and "README.md" not in names
    config = json.loads((out / "config.json").read_text())
    assert (out / config["backbone_name_or_path"]).is_dir()  # shipped next to the adapter

    merged = LoratForTracking.from_pretrained(out).eval()
    unmerged = LoratForTracking.from_pretrained(out, merge_lora=False).eval()
    from safetensors.torch import load_file

    saved = load_file(out / "adapter_model.safetensors")
    state = unmerged.state_dict()

    def plain(key: str) -> str:
        return key.replace(".modules_to_save.default", "").replace(".default", "")

    state = {plain(k): v for k, v in state.items() if ".original_module." not in k}
    for key, value in saved.items():
        assert torch.equal(state[plain(key)], value), key
    with torch.no_grad():
        a, b = merged(**_inputs(out)), unmerged(**_inputs(out))
    assert torch.allclose(a.pred_boxes, b.pred_boxes, atol=1e-5)
    assert torch.allclose(a.score_map, b.score_map, atol=1e-4)


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    common = [*TINY, "--max_train_steps", "20", "--checkpointing_steps", "10", "--seed", "3"]
    common += ["--learning_rate", "5e-3", "--lr_warmup_steps", "4"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    done = _train([*common, "--output_dir", str(full)])
    assert done.returncode == 0, done.stderr[-3000:]
    crashed = _train([*common, "--output_dir", str(cut), "--debug_crash_after_step", "12"])
    assert crashed.returncode == -9, crashed.stderr[-3000:]  # SIGKILL after step 12, checkpoint at 10
    assert sorted(p.name for p in cut.glob("checkpoint-*")) == ["checkpoint-10"]
    assert not (cut / "adapter_model.safetensors").exists()
    resumed = _train([*common, "--output_dir", str(cut), "--resume_from_checkpoint", "latest"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr

    from safetensors.torch import load_file

    a, b = load_file(full / "adapter_model.safetensors"), load_file(cut / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)
    # the resumed run saw the same data and learning rates at steps 11..20
    full_log = {r["step"]: r for r in _log(full)}
    resumed_log = [r for r in _log(cut)][-10:]
    for record in resumed_log:
        assert record["loss"] == pytest.approx(full_log[record["step"]]["loss"], abs=1e-6)
        assert record["lr"] == pytest.approx(full_log[record["step"]]["lr"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_cpu_processes_train_on_different_data(tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        "training/configs/cpu_2proc.yaml",
    ]
    cmd += ["--main_process_port", str(_free_port()), str(TRAIN), *TINY, "--output_dir", str(out)]
    cmd += [
        "--max_train_steps",
        "3",
        "--checkpointing_steps",
        "3",
        "--debug_log_samples",
        "--lr_warmup_steps",
        "0",
    ]
    cmd += ["--dataset", "synthetic", "--dataset", "synthetic_stream"]
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "2 processes" in done.stderr  # global batch = 2 per device x 2 processes

    seen = []
    for rank in (0, 1):
        records = [
            json.loads(line)
            for line in (out / "debug" / f"samples_rank{rank}.jsonl").read_text().splitlines()
        ]
        assert [r["step"] for r in records] == [0, 1, 2]
        seen.append(records)
    indices = [{i for r in records for i in r["sample_index"]} for records in seen]
    assert indices[0].isdisjoint(indices[1]) and indices[0] | indices[1] == set(range(12))
    streamed = [
        {
            k.split("/")[1].split("#")[0]
            for r in records
            for k in r["keys"]
            if k.startswith("synthetic_stream")
        }
        for records in seen
    ]
    assert streamed[0].isdisjoint(streamed[1])  # split_dataset_by_node gave each rank its own shards
    state = json.loads((out / "checkpoint-3" / "training_state.json").read_text())
    assert state["num_processes"] == 2 and {f"random_states_{r}.pkl" for r in (0, 1)} <= {
        p.name for p in (out / "checkpoint-3").iterdir()
    }
    assert (out / "adapter_model.safetensors").is_file()


def test_trains_from_streamed_parquet(tmp_path):
    data = tmp_path / "data"
    write_parquet_shards(
        [make_synthetic_sequence(i, num_frames=10, frame_size=(64, 48)) for i in range(2)], data
    )
    out = tmp_path / "run"
    result = main(
        parse_args(
            [*TINY, "--dataset", f"parquet:{data}", "--output_dir", str(out), "--max_train_steps", "3"]
        )
    )
    assert result["global_step"] == 3 and result["skipped"].get("error:ValueError", 0) == 0
    assert (out / "adapter_model.safetensors").is_file() and len(_log(out)) == 3


def test_bad_flags_give_one_clear_error(tmp_path, capsys):
    for argv, message in (
        (["--dataset", "imagenet:/x"], "unknown dataset 'imagenet'"),
        (["--dataset", "got10k"], "needs a root"),
        (["--dataset", f"lasot:{tmp_path / 'nope'}"], "root not found"),
        (["--dataset", "synthetic", "--dataset_weights", "1", "2"], "2 values for 1 --dataset"),
        (["--push_to_hub"], "--hub_model_id"),
    ):
        with pytest.raises(SystemExit) as info:
            parse_args(argv)
        assert info.value.code == 2
        assert message in capsys.readouterr().err
