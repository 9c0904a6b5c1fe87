"""Batched runner: lock-step batching, resume, sharding, bad input, summary; the real tiny tracker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image

from modeling_lorat.data.sequence import TrackingSequence
from modeling_lorat.evaluation.results_io import read_boxes, read_sequence_results, result_paths
from modeling_lorat.evaluation.runner import (
    compute_dataset_metrics,
    evaluate_tracker,
    shard_sequences,
    write_summary,
)
from modeling_lorat.evaluation.summary import read_summary


class Result(NamedTuple):
    box_xywh: np.ndarray
    score: float


class FakeTracker:
    """Deterministic stand-in with the LoratTracker API: predicts the last box moved by +1 px in x."""

    def __init__(self) -> None:
        self.initialized: list[tuple[float, ...]] = []
        self.batches: list[int] = []

    def new_state(self, frame: np.ndarray, box_xywh: np.ndarray) -> dict:
        assert frame.dtype == np.uint8 and frame.ndim == 3
        self.initialized.append(tuple(box_xywh))
        return {"box": np.asarray(box_xywh, dtype=float)}

    def step(self, states: list[dict], frames: list[np.ndarray]) -> list[Result]:
        self.batches.append(len(states))
        out = []
        for state in states:
            state["box"] = state["box"] + [1.0, 0.0, 0.0, 0.0]
            out.append(Result(state["box"].copy(), 1.0))
        return out


class FakeState:
    def __init__(self, num_processes: int = 1, process_index: int = 0) -> None:
        self.num_processes = num_processes
        self.process_index = process_index
        self.is_main_process = process_index == 0
        self.waits = 0

    def wait_for_everyone(self) -> None:
        self.waits += 1


def make_sequence(i: int, num_frames: int) -> TrackingSequence:
    """A target moving +1 px/frame in x (the fake tracker follows it exactly)."""
    boxes = np.array([[10.0 + i + f, 20.0, 15.0 + i, 12.0] for f in range(num_frames)])
    frames = [lambda: np.zeros((48, 64, 3), np.uint8)] * num_frames
    return TrackingSequence(f"seq{i}", frames, boxes, dataset="otb")


def run(tmp_path: Path, sequences, tracker=None, **kwargs):
    tracker = tracker or FakeTracker()
    kwargs.setdefault("state", FakeState())
    return tracker, evaluate_tracker(tracker, sequences, tmp_path, progress=False, **kwargs)


def test_lock_step_batches_refill_and_write_results(tmp_path):
    sequences = [make_sequence(i, n) for i, n in enumerate([3, 9, 5, 2, 7])]
    tracker, summary = run(tmp_path, sequences, batch_size=2)
    assert max(tracker.batches) == 2
    assert sum(tracker.batches) == sum(len(s) - 1 for s in sequences)
    # Refill: the batch stays full while sequences are queued (only the tail runs with 1).
    assert tracker.batches.count(1) <= 6
    assert len(tracker.initialized) == 5
    for seq in sequences:
        boxes = read_boxes(tmp_path / "results" / f"{seq.name}.txt", num_frames=len(seq))
        np.testing.assert_allclose(boxes, seq.boxes)  # the fake tracker is perfect here
        times = (tmp_path / "results" / f"{seq.name}_time.txt").read_text().split()
        assert len(times) == len(seq) and all(float(t) >= 0 for t in times)
    assert summary["metrics"]["precision"] == 1.0
    assert summary["metrics"]["success_auc"] == pytest.approx(20 / 21)
    assert summary["skipped"] == {} and summary["run"]["tracked"] == 5


def test_resume_recomputes_only_incomplete_sequences(tmp_path):
    sequences = [make_sequence(i, 6) for i in range(3)]
    run(tmp_path, sequences)
    results = tmp_path / "results"
    before = {s.name: (results / f"{s.name}.txt").read_text() for s in sequences}
    (results / "seq0.txt").unlink()  # deleted
    half = "".join(before["seq1"].splitlines(keepends=True)[:3])
    (results / "seq1.txt").write_text(half)  # half-written by someone else
    stale = results / ".seq1.txt.abc123.tmp"
    stale.write_text("1,2,3")  # a temp file left by an interrupted atomic write
    tracker, summary = run(tmp_path, sequences)
    recomputed = sorted(box[0] for box in tracker.initialized)
    assert recomputed == [sequences[0].boxes[0, 0], sequences[1].boxes[0, 0]]  # not seq2
    assert summary["run"] == summary["run"] | {"tracked": 2, "resumed": 1}
    assert not stale.exists()
    after = {s.name: (results / f"{s.name}.txt").read_text() for s in sequences}
    assert after == before


def test_bad_sequences_are_skipped_with_reasons(tmp_path):
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    paths = [frames_dir / f"{i:08d}.jpg" for i in range(1, 6)]
    for p in paths[:3]:
        Image.new("RGB", (64, 48)).save(p)
    missing = TrackingSequence("missing_frame", paths, np.tile([5.0, 5.0, 10.0, 10.0], (5, 1)), dataset="otb")
    nan_box = make_sequence(1, 4)
    nan_box.name = "nan_first"
    nan_box.boxes[0] = np.nan
    good = make_sequence(2, 4)
    tracker, summary = run(tmp_path / "run", [missing, nan_box, good], batch_size=4)
    assert set(summary["skipped"]) == {"missing_frame", "nan_first"}
    assert "cannot load frame 3" in summary["skipped"]["missing_frame"]
    assert "frame not found" in summary["skipped"]["missing_frame"]
    assert summary["skipped"]["nan_first"].startswith("first ground-truth box has non-finite values: [nan")
    assert list(summary["per_sequence"]) == ["seq2"]
    assert not (tmp_path / "run" / "results" / "missing_frame.txt").exists()
    assert summary["errors"] == {}


def test_failing_tracker_step_isolates_the_bad_sequence(tmp_path):
    class Picky(FakeTracker):
        def step(self, states, frames):
            if any(s["box"][2] == 16.0 for s in states):  # seq1 has width 16
                raise RuntimeError("boom")
            return super().step(states, frames)

    sequences = [make_sequence(i, 4) for i in range(3)]
    _, summary = run(tmp_path, sequences, tracker=Picky(), batch_size=3)
    assert summary["skipped"] == {"seq1": "tracker failed at frame 1: boom"}
    assert sorted(summary["per_sequence"]) == ["seq0", "seq2"]


def test_wrong_line_count_is_reported_naming_the_sequence(tmp_path):
    sequences = [make_sequence(i, 5) for i in range(2)]
    results = tmp_path / "results"
    run(tmp_path, sequences)
    (results / "seq1.txt").write_text("1,2,3,4\n" * 3)
    with pytest.raises(ValueError, match=r"seq1: result file .* has 3 lines, expected 5"):
        read_sequence_results(results, "seq1", num_frames=5)
    metrics = compute_dataset_metrics("otb", sequences, results)  # lorat: one line per frame
    assert "seq1" in metrics["errors"] and "3 result lines for 5 frames" in metrics["errors"]["seq1"]
    assert list(metrics["per_sequence"]) == ["seq0"] and metrics["metrics"] is not None
    with pytest.raises(ValueError, match="seq1"):
        compute_dataset_metrics("otb", sequences, results, strict=True)
    # pytracking pads shorter results with zero boxes (failures), as its extract_results does
    padded = compute_dataset_metrics("otb", sequences, results, protocol="pytracking")
    assert padded["errors"] == {} and padded["per_sequence"]["seq1"]["precision"] == pytest.approx(1 / 5)


def test_sharding_matches_single_process(tmp_path):
    sequences = [make_sequence(i, 3 + i) for i in range(5)]
    assert [s.name for s in shard_sequences(sequences, 1, 2)] == ["seq1", "seq3"]
    _, single = run(tmp_path / "single", sequences, batch_size=2)
    # Simulate 2 processes: the non-main one finishes first, then the main one merges.
    worker = FakeState(2, 1)
    tracker1, other = run(tmp_path / "sharded", sequences, batch_size=2, state=worker)
    assert other["process_index"] == 1 and worker.waits == 1
    tracker0, merged = run(tmp_path / "sharded", sequences, batch_size=2, state=FakeState(2, 0))
    assert len(tracker0.initialized) == 3 and len(tracker1.initialized) == 2
    for seq in sequences:
        a = (tmp_path / "single" / "results" / f"{seq.name}.txt").read_bytes()
        b = (tmp_path / "sharded" / "results" / f"{seq.name}.txt").read_bytes()
        assert a == b
    assert merged["metrics"] == single["metrics"]
    assert merged["per_sequence"] == single["per_sequence"]
    assert merged["run"]["tracked"] == 5 and merged["run"]["num_processes"] == 2
    assert not list((tmp_path / "sharded").glob(".shard-*.json"))


def test_got10k_layout_and_summary_file(tmp_path):
    seq = make_sequence(0, 4)
    seq.dataset = "got10k"
    frame = tmp_path / "f.jpg"
    Image.new("RGB", (200, 100)).save(frame)
    seq.frames = [str(frame)] * 4
    _, summary = run(tmp_path, [seq])
    box_file, time_file = result_paths(tmp_path / "results", "seq0", "got10k")
    assert (
        box_file == tmp_path / "results" / "seq0" / "seq0_001.txt"
        and box_file.is_file()
        and time_file.is_file()
    )
    assert summary["metrics"] == {"ao": 1.0, "sr50": 1.0, "sr75": 1.0}
    summary["per_sequence"]["x"] = {"ao": float("nan")}
    path = write_summary(tmp_path, {"dataset": "got10k", "split": "val", "model": "m", **summary})
    data = json.loads(path.read_text())
    assert data["dataset"] == "got10k" and data["metrics"]["ao"] == 1.0
    assert data["per_sequence"]["x"]["ao"] is None and "timestamp" in data
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_tiny_lorat_tracker_on_synthetic_sequences(tmp_path):
    pytest.importorskip("transformers")
    from modeling_lorat.data.synthetic import synthetic_sequences
    from modeling_lorat.testing_utils import tiny_model
    from modeling_lorat.tracking_lorat import LoratTracker

    sequences = synthetic_sequences(3, seed=0, num_frames=5, frame_size=(80, 64))
    tracker = LoratTracker(tiny_model(), device="cpu")
    _, summary = run(tmp_path, sequences, tracker=tracker, batch_size=2, dataset_name="synthetic")
    assert summary["skipped"] == {} and summary["num_evaluated"] == 3
    for key in ("success_auc", "precision", "norm_precision"):
        assert 0.0 <= summary["metrics"][key] <= 1.0
    boxes = read_boxes(tmp_path / "results" / f"{sequences[0].name}.txt", num_frames=5)
    assert np.all(np.isfinite(boxes)) and np.all(boxes[:, 2:] >= 0)


ACCELERATE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    from test_evaluation_runner import FakeTracker, make_sequence
    from modeling_lorat.evaluation.runner import evaluate_tracker
    sequences = [make_sequence(i, 3 + i) for i in range(5)]
    summary = evaluate_tracker(FakeTracker(), sequences, sys.argv[1], batch_size=2, progress=False)
    if "metrics" in summary:
        print("SUMMARY=" + json.dumps({"metrics": summary["metrics"], "run": summary["run"]}))
    """
)


@pytest.mark.slow
def test_two_process_launch_matches_single_process(tmp_path):
    script = tmp_path / "launch_eval.py"
    script.write_text(ACCELERATE_SCRIPT)
    # `accelerate launch --cpu` starts a single process (multi-CPU needs mpirun); torchrun is what
    # `accelerate launch --multi_gpu` uses and PartialState picks up its env (gloo on CPU).
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [*cmd, str(tmp_path / "run"), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("SUMMARY=")]
    assert len(lines) == 1  # only the main process scores
    summary = json.loads(lines[0][8:])
    _, single = run(tmp_path / "single", [make_sequence(i, 3 + i) for i in range(5)], batch_size=2)
    assert summary["metrics"] == single["metrics"] and summary["run"]["num_processes"] == 2


def test_evaluate_cli_end_to_end(tmp_path, capsys):
    from modeling_lorat.cli import main as cli_main
    from modeling_lorat.data.synthetic import write_synthetic_benchmark
    from modeling_lorat.testing_utils import save_tiny_checkpoint

    model = save_tiny_checkpoint(tmp_path / "model")
    root = write_synthetic_benchmark(tmp_path / "synth", 3, seed=1, num_frames=4, frame_size=(64, 48))
    out = tmp_path / "runs" / "tiny"
    args = [
        "evaluate",
        "--model",
        str(model),
        "--dataset",
        "synthetic",
        "--root",
        str(root),
        "--output",
        str(out),
    ]
    args += ["--batch-size", "2", "--device", "cpu", "--no-progress"]
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert "AUC" in printed and "P_norm" in printed and "3/3" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "synthetic" and summary["model"] == str(model)
    assert summary["protocol"] == "lorat" and "official LoRAT" in summary["protocol_info"]["reproduces"]
    assert "protocol: lorat" in printed
    assert set(summary["metrics"]) == {"success_auc", "precision", "norm_precision"}
    assert len(summary["per_sequence"]) == 3 and summary["skipped"] == {} and summary["fps"] > 0
    assert (out / "success_plot.png").is_file() and (out / "precision_plot.png").is_file()
    # Second run resumes everything, and a subset selects sequences by name.
    assert cli_main([*args, "--sequences", "synth_1_0000"]) == 0
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["resumed"] == 1 and summary["run"]["tracked"] == 0
    assert cli_main([*args, "--sequences", "nope"]) == 2
    assert "unknown sequence(s): nope" in capsys.readouterr().err
    # Another protocol rescores the same result files; the summary records which one.
    assert cli_main([*args, "--protocol", "otb-toolkit"]) == 1  # 4-frame sequences: the OTB toolkit needs 20
    assert (
        "left out of the metrics: synth_1_0000: 4 frames; the OTB toolkit needs at least 20"
        in capsys.readouterr().out
    )
    assert cli_main([*args, "--protocol", "pytracking"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "pytracking" and summary["protocol_info"]["reference"].startswith(
        "visionml"
    )


def test_stale_temp_files_of_a_killed_run_are_removed_on_start(tmp_path):
    """A kill during an atomic write leaves ``.<file>.<random>.tmp``; the next run removes those, nothing else."""
    sequences = [make_sequence(0, 3)]
    stale = [tmp_path / ".summary.json.k2j4x_9a.tmp", tmp_path / "results" / ".seq0.txt.abcdefgh.tmp"]
    kept = [tmp_path / ".notes.tmp", tmp_path / "results" / "my.tmp"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    run(tmp_path, sequences, state=FakeState(2, 1))  # not the main process: removes nothing
    assert all(p.exists() for p in stale)
    run(tmp_path, sequences)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def test_lasot_result_files_are_one_based_like_the_toolkit(tmp_path):
    """In memory LaSOT boxes are 0-based (official loader); files carry the toolkit's 1-based x, y."""
    sequences = [make_sequence(i, 4) for i in range(2)]
    for seq in sequences:
        seq.dataset = "lasot"
    tracker, summary = run(tmp_path, sequences, batch_size=2, dataset_name="lasot")
    assert tracker.initialized[0] == tuple(sequences[0].boxes[0])  # the tracker sees 0-based boxes
    on_disk = read_boxes(result_paths(tmp_path / "results", "seq0")[0], num_frames=4)
    np.testing.assert_allclose(on_disk, sequences[0].boxes + [1, 1, 0, 0])
    back = read_sequence_results(tmp_path / "results", "seq0", offset=1.0).boxes
    np.testing.assert_allclose(back, sequences[0].boxes)
    assert summary["metrics"]["success_auc"] == pytest.approx(20 / 21)  # perfect (pytracking's 21 thresholds)
    # the same files read without the offset are 1 px off: the offset is what makes them perfect
    for seq in sequences:
        seq.dataset = "lasot_ext"
    shifted = compute_dataset_metrics("lasot", sequences, tmp_path / "results")
    assert shifted["metrics"]["success_auc"] < summary["metrics"]["success_auc"]


def test_trackers_with_the_older_initialize_name_still_run_and_summary_reads_back(tmp_path):
    class OldStyle:
        def __init__(self) -> None:
            self.inner = FakeTracker()

        def initialize(self, frame, box_xywh):
            return self.inner.new_state(frame, box_xywh)

        def step(self, states, frames):
            return self.inner.step(states, frames)

    sequences = [make_sequence(i, 4) for i in range(3)]
    _, summary = run(tmp_path, sequences, tracker=OldStyle(), batch_size=2)
    assert summary["skipped"] == {} and summary["metrics"]["precision"] == 1.0
    write_summary(tmp_path, {"dataset": "otb", **summary})
    assert (
        read_summary(tmp_path)["metrics"]
        == summary["metrics"]
        == read_summary(tmp_path / "summary.json")["metrics"]
    )
    with pytest.raises(FileNotFoundError, match=r"^evaluation summary not found: .*nope$"):
        read_summary(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "summary.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="an evaluation summary is a JSON object, got list"):
        read_summary(tmp_path / "bad")
