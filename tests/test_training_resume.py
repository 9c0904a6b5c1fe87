"""Resuming: the log keeps each step once, a damaged checkpoint file is named in one line with the
checkpoint to use instead, and re-saving a step never leaves that step without a complete checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training import checkpointing  # noqa: E402
from training.checkpointing import cut_log, list_checkpoints, save_checkpoint  # noqa: E402

TRAIN = ROOT / "training" / "train.py"
TINY = ["--tiny", "--train_batch_size", "2", "--dataloader_num_workers", "0", "--report_to", "none"]
RUN = [*TINY, "--max_train_steps", "4", "--checkpointing_steps", "1", "--logging_steps", "1"]


def _train(*argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    env.pop("ACCELERATE_USE_CPU", None)
    return subprocess.run(
        [sys.executable, str(TRAIN), *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A tiny run SIGKILLed after step 3 (checkpoints at steps 1, 2, 3; logged every step)."""
    out = tmp_path_factory.mktemp("killed") / "run"
    done = _train(*RUN, "--output_dir", str(out), "--debug_crash_after_step", "3")
    assert done.returncode == -9, done.stderr[-3000:]
    assert [s for s, _ in list_checkpoints(out)] == [1, 2, 3]
    return out


def test_resume_cuts_the_log_back_to_the_checkpoint_step(killed_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(killed_run, out)
    shutil.rmtree(out / "checkpoint-3")  # the kill came after step 3 but before its checkpoint
    with (out / "train_log.jsonl").open("a") as log:
        log.write('{"step": 4, "loss": 1.')  # and cut a line short
    assert _steps_tolerant(out) == [1, 2, 3]
    done = _train(*RUN, "--output_dir", str(out), "--resume_from_checkpoint", "latest")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checkpoint-2 at step 2" in done.stderr
    assert _steps(out) == [1, 2, 3, 4]  # step 3 trained again and logged once


def _steps_tolerant(out: Path) -> list[int]:
    steps = []
    for line in (out / "train_log.jsonl").read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:
            pass
    return steps


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_resume_from_a_damaged_optimizer_file_names_it_and_the_earlier_checkpoint(
    killed_run, tmp_path, damage
):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(killed_run, out)
    optimizer = out / "checkpoint-3" / "optimizer.bin"
    data = optimizer.read_bytes()
    optimizer.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\0" * len(data))
    done = _train(*RUN, "--output_dir", str(out), "--resume_from_checkpoint", "latest")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert last.startswith(
        f"train.py: error: cannot resume from {out / 'checkpoint-3'}: optimizer.bin is damaged"
    )
    assert last.endswith(
        f"resume from the earlier checkpoint with --resume_from_checkpoint {out / 'checkpoint-2'}"
    )
    # the advice works
    done = _train(*RUN, "--output_dir", str(out), "--resume_from_checkpoint", str(out / "checkpoint-2"))
    assert done.returncode == 0, done.stderr[-3000:]


def test_damaged_only_checkpoint_says_to_start_again(killed_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(killed_run, out)
    for step in (1, 2):
        shutil.rmtree(out / f"checkpoint-{step}")
    (out / "checkpoint-3" / "optimizer.bin").write_bytes(b"")
    done = _train(*RUN, "--output_dir", str(out), "--resume_from_checkpoint", "latest")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "optimizer.bin is damaged (truncated or corrupted; the file is empty)" in last
    assert last.endswith(
        "there is no earlier complete checkpoint: start again without --resume_from_checkpoint"
    )


class _Accelerator:
    """The parts of ``accelerate.Accelerator`` that ``save_checkpoint`` uses (one process)."""

    is_main_process = True

    def __init__(self, payload: str) -> None:
        self.payload = payload

    def wait_for_everyone(self) -> None:
        pass

    def save_state(self, folder: str) -> None:
        Path(folder).mkdir(parents=True)
        (Path(folder) / "optimizer.bin").write_text(self.payload)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "fallback"])
def test_resaving_a_step_always_leaves_a_complete_checkpoint(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(checkpointing, "_exchange", lambda first, second: False)
    save_checkpoint(_Accelerator("old"), tmp_path, 5, {"seed": 0})
    seen = []
    real_replace = os.replace

    def watching_replace(src, dst):  # after every rename: is there a complete checkpoint-5?
        real_replace(src, dst)
        final = tmp_path / "checkpoint-5"
        seen.append((final / "optimizer.bin").read_text() if final.is_dir() else None)

    monkeypatch.setattr(checkpointing.os, "replace", watching_replace)
    save_checkpoint(_Accelerator("new"), tmp_path, 5, {"seed": 0})
    assert (tmp_path / "checkpoint-5" / "optimizer.bin").read_text() == "new"
    assert json.loads((tmp_path / "checkpoint-5" / "training_state.json").read_text())["global_step"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-5"]
    if exchange:
        assert seen == []  # one atomic swap, no rename at all
    else:
        assert seen[0] is None  # the window of the two-rename fallback, covered below


def test_a_resave_killed_between_the_two_renames_is_put_back(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpointing, "_exchange", lambda first, second: False)
    save_checkpoint(_Accelerator("old"), tmp_path, 5, {"seed": 0})
    real_replace, calls = os.replace, []

    def dying_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the new checkpoint never arrives
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(checkpointing.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_Accelerator("new"), tmp_path, 5, {"seed": 0})
    monkeypatch.setattr(checkpointing.os, "replace", real_replace)
    assert not (tmp_path / "checkpoint-5").exists()
    assert [(s, p.name) for s, p in list_checkpoints(tmp_path)] == [(5, "checkpoint-5")]
    assert (tmp_path / "checkpoint-5" / "optimizer.bin").read_text() == "old"


def test_cut_log_keeps_accepted_records_and_drops_a_cut_line(tmp_path):
    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n{"st')
    assert cut_log(log, lambda r: r["step"] <= 2) == 2
    assert log.read_text() == '{"step": 1}\n{"step": 2}\n'
    assert cut_log(log, lambda r: True) == 0
    assert cut_log(tmp_path / "missing.jsonl", lambda r: True) == 0
