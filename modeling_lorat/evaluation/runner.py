"""Run a tracker over a benchmark in lock-step batches, resumable and shardable, then score it.

``evaluate_tracker`` runs its process's shard (:mod:`.sharding`) through :func:`run_sequences`, which
feeds the sequences to the package's one lock-step loop
(:func:`~modeling_lorat.tracking_session.track_lockstep`: each sequence starts on frame 0 with its
ground-truth box, the active ones advance together with one batched ``tracker.step`` per frame, queued
ones take the places of finished ones) and writes one result file per sequence atomically
(:mod:`.results_io`). Sequences with a complete result file are skipped (resume). The main process then
scores the files (:mod:`.scoring`, under a named protocol, default ``lorat``), so the numbers do not
depend on the sharding. This is the running side; scoring, summaries and plots never import it.

Several GPUs: ``accelerate launch --multi_gpu --num_processes N -m modeling_lorat.cli evaluate ...``.
Several CPU processes: ``torchrun --nproc_per_node N -m modeling_lorat.cli evaluate ...``
(``accelerate launch --cpu`` starts a single process; multi-CPU there needs mpirun).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.sequence import TrackingSequence
from ..tracking_session import LoratTrackingSession, track_lockstep
from .protocols import DEFAULT_PROTOCOL, get_protocol
from .results_io import (
    has_complete_results,
    remove_stale_temp_files,
    remove_temp_files,
    result_file_offset,
    write_sequence_results,
)
from .scoring import compute_dataset_metrics, layout_for
from .sharding import accelerate_state, merge_shard_reports, shard_sequences
from .summary import write_summary

__all__ = [  # compute_dataset_metrics, write_summary, shard_sequences, accelerate_state: re-exported
    "RESULTS_SUBDIR",
    "RunReport",
    "accelerate_state",
    "compute_dataset_metrics",
    "evaluate_tracker",
    "first_box_problem",
    "run_sequences",
    "shard_sequences",
    "write_summary",
]

logger = logging.getLogger(__name__)

RESULTS_SUBDIR = "results"


def first_box_problem(sequence: TrackingSequence) -> str | None:
    """Why the sequence cannot be started (no frame, no ground truth, a first box that
    :func:`~modeling_lorat.image_processing_lorat.validate_box_xywh` refuses), or None."""
    from ..image_processing_lorat import validate_box_xywh

    if len(sequence) == 0:
        return "sequence has no frame"
    if len(sequence.boxes) == 0:
        return "sequence has no ground-truth box"
    try:
        validate_box_xywh(sequence.boxes[0])
    except ValueError as exc:
        return f"first ground-truth {exc}"
    return None


@dataclass
class RunReport:
    """What one process did: sequences tracked now, found complete (resumed) and skipped (name -> reason)."""

    tracked: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0


def _frames(sequence: TrackingSequence) -> Iterator[np.ndarray]:
    for index in range(len(sequence)):
        yield sequence.load_frame(index)


def run_sequences(
    tracker: Any,
    sequences: Sequence[TrackingSequence],
    results_dir: str | Path,
    batch_size: int = 8,
    layout: str = "ope",
    progress: bool = True,
    num_io_workers: int = 4,
    desc: str = "tracking",
) -> RunReport:
    """Track ``sequences`` in lock-step batches of up to ``batch_size`` and write their result files.

    Frame 0's box is the ground truth; its time is the tracker's start time. A step's wall time is
    shared equally by the sequences of the batch (per-frame seconds in the time files). Frames are read
    by ``num_io_workers`` threads. Sequences that cannot be run (missing frame, bad first box, tracker
    error) are logged and reported in ``RunReport.skipped``; the run goes on with the others.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    results_dir = Path(results_dir)
    report = RunReport()
    queue: list[TrackingSequence] = []
    for seq in sequences:
        if has_complete_results(results_dir, seq.name, len(seq), layout):
            report.resumed.append(seq.name)
        else:
            queue.append(seq)
    if report.resumed:
        logger.info("resuming: %d of %d sequences already have results", len(report.resumed), len(sequences))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(sequences), initial=len(report.resumed), desc=desc, unit="seq", disable=not progress)
    by_name = {seq.name: seq for seq in queue}
    boxes: dict[str, list[np.ndarray]] = {}
    times: dict[str, list[float]] = {}

    def skip(name: str, reason: str) -> None:
        report.skipped[name] = reason
        boxes.pop(name, None)
        logger.warning("skipping sequence %s: %s", name, reason)
        bar.update(1)

    def videos() -> Iterator[tuple[str, Iterator[np.ndarray], np.ndarray]]:
        for seq in queue:
            remove_temp_files(results_dir, seq.name, layout)
            problem = first_box_problem(seq)
            if problem is not None:
                skip(seq.name, problem)
                continue
            yield seq.name, _frames(seq), seq.boxes[0].copy()

    session = LoratTrackingSession(tracker)
    started = time.perf_counter()
    try:
        events = track_lockstep(session, videos(), batch_size, skip_errors=True, io_workers=num_io_workers)
        for event in events:
            name = event.key
            if event.kind == "error":
                skip(name, event.error)
            elif event.kind == "end":
                seq = by_name[name]
                write_sequence_results(
                    results_dir, name, np.stack(boxes.pop(name)), np.asarray(times.pop(name)), layout,
                    offset=result_file_offset(seq.dataset),
                )  # fmt: skip
                report.tracked.append(name)
                bar.update(1)
            else:
                boxes.setdefault(name, []).append(event.result.box_xywh)
                times.setdefault(name, []).append(event.seconds)
                report.frames += 1
                elapsed = time.perf_counter() - started
                bar.set_postfix(
                    fps=f"{report.frames / max(elapsed, 1e-9):.1f}", active=len(session), refresh=False
                )
    finally:
        bar.close()
    report.seconds = time.perf_counter() - started
    return report


def evaluate_tracker(
    tracker: Any,
    sequences: Sequence[TrackingSequence],
    output_dir: str | Path,
    batch_size: int = 8,
    progress: bool = True,
    dataset_name: str | None = None,
    layout: str | None = None,
    state: Any = None,
    protocol: str = DEFAULT_PROTOCOL,
) -> dict:
    """Run ``tracker`` on ``sequences`` (resuming), write ``output_dir/results/``, return the summary.

    Args:
        tracker: object with ``new_state(frame, box_xywh) -> state`` (or the older name ``initialize``)
            and ``step(states, frames) -> [result with .box_xywh, .score]`` (a ``LoratTracker``).
        sequences: the benchmark; names must be unique.
        output_dir: run folder; result files go to ``output_dir/results``.
        batch_size: sequences stepped together.
        progress: show a tqdm bar (sequences done, frames per second, ETA).
        dataset_name: benchmark name choosing metrics and layout (default: ``sequences[0].dataset``).
        layout: result layout, default ``"got10k"`` for GOT-10k else ``"ope"``.
        state: an ``accelerate.PartialState``-like object (default: ``PartialState()``); with
            ``num_processes > 1`` each process runs its shard and the main process scores.
        protocol: evaluation protocol scoring the results (see :mod:`.protocols`; default ``lorat``).

    Temp files left in the run folder by an interrupted run (summary, plots, result files) are removed
    by the main process before tracking starts.

    Returns:
        On the main process ``compute_dataset_metrics``'s dict plus ``"skipped"`` (name -> reason,
        all processes), ``"results_dir"``, ``"layout"`` and ``"run"`` (tracked / resumed counts,
        seconds). On other processes ``{"process_index", "run"}`` only.
    """
    names = [seq.name for seq in sequences]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate sequence names: {', '.join(dupes[:5])}")
    dataset_name = dataset_name if dataset_name is not None else (sequences[0].dataset if sequences else "")
    get_protocol(protocol)  # an unknown protocol fails before tracking
    layout = layout or layout_for(dataset_name)
    output_dir = Path(output_dir)
    results_dir = output_dir / RESULTS_SUBDIR
    results_dir.mkdir(parents=True, exist_ok=True)
    state = state if state is not None else accelerate_state()
    num_processes, index = int(state.num_processes), int(state.process_index)
    if state.is_main_process:
        for stale in remove_stale_temp_files(output_dir):
            logger.info("removed a temp file left by an interrupted run: %s", stale)

    mine = shard_sequences(list(sequences), index, num_processes)
    desc = dataset_name or "tracking"
    if num_processes > 1:
        desc = f"{desc} [{index + 1}/{num_processes}]"
    report = run_sequences(
        tracker, mine, results_dir, batch_size=batch_size, layout=layout, progress=progress, desc=desc
    )
    run_info = {
        "tracked": len(report.tracked),
        "resumed": len(report.resumed),
        "frames": report.frames,
        "seconds": report.seconds,
        "num_processes": num_processes,
    }
    merged = merge_shard_reports(output_dir, state, dict(report.skipped), run_info)
    if merged is None:
        return {"process_index": index, "run": run_info}
    skipped, run_info = merged

    summary = compute_dataset_metrics(dataset_name, sequences, results_dir, protocol=protocol)
    summary["skipped"] = {name: skipped[name] for name in names if name in skipped}
    summary["errors"] = {k: v for k, v in summary["errors"].items() if k not in summary["skipped"]}
    summary["results_dir"] = str(results_dir)
    summary["layout"] = layout
    summary["run"] = run_info
    return summary
