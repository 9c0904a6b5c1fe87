"""Run a tracker over a benchmark in lock-step batches, resumable and shardable, then score it.

``evaluate_tracker`` initialises each sequence on frame 0 with its ground-truth box, steps every
active sequence together with one batched ``tracker.step`` call per frame, refills the batch
from the queue as sequences finish, and writes one result file per sequence atomically
(``results_io``). Sequences with a complete result file are skipped (resume). Under ``accelerate``
each process takes sequences ``i % num_processes == process_index``; the main process waits for
the others and computes the metrics from the files, so the numbers do not depend on the sharding.
The metrics follow a named evaluation protocol (:mod:`.protocols`; default ``lorat``, the official
LoRAT evaluation), recorded in the summary.

Several GPUs: ``accelerate launch --multi_gpu --num_processes N -m modeling_lorat.cli evaluate ...``.
Several CPU processes: ``torchrun --nproc_per_node N -m modeling_lorat.cli evaluate ...``
(``accelerate launch --cpu`` starts a single process; multi-CPU there needs mpirun).
"""

from __future__ import annotations

import ast
import json
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.sequence import TrackingSequence
from . import metrics as M
from .protocols import DEFAULT_PROTOCOL, EvaluationProtocol, canonical, get_protocol, protocol_dataset_metrics
from .results_io import (
    atomic_write_text,
    has_complete_results,
    read_sequence_results,
    remove_stale_temp_files,
    remove_temp_files,
    result_file_offset,
    write_sequence_results,
)

logger = logging.getLogger(__name__)

GOT10K_DATASETS = ("got10k",)
OPE_METRIC_KEYS = ("success_auc", "precision", "norm_precision")
GOT10K_METRIC_KEYS = ("ao", "sr50", "sr75")
RESULTS_SUBDIR = "results"
SUMMARY_FILE = "summary.json"


# ---------------------------------------------------------------------------------- helpers
def layout_for(dataset_name: str) -> str:
    """Result-file layout written for a benchmark: GOT-10k's own, the flat OPE one otherwise."""
    return "got10k" if canonical(dataset_name) in GOT10K_DATASETS else "ope"


def shard_sequences(sequences: Sequence[Any], process_index: int, num_processes: int) -> list[Any]:
    """The sequences process ``process_index`` of ``num_processes`` runs: those with ``i % n == index``."""
    if num_processes < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"bad shard: process {process_index} of {num_processes}")
    return [seq for i, seq in enumerate(sequences) if i % num_processes == process_index]


def first_box_problem(sequence: TrackingSequence) -> str | None:
    """Why the sequence cannot be initialised (no frame, NaN / empty first box), or None."""
    if len(sequence) == 0:
        return "sequence has no frame"
    if len(sequence.boxes) == 0:
        return "sequence has no ground-truth box"
    box = sequence.boxes[0]
    if not np.all(np.isfinite(box)):
        return f"first ground-truth box is not finite: {box.tolist()}"
    if box[2] <= 0 or box[3] <= 0:
        return f"first ground-truth box has no area: {box.tolist()}"
    return None


def _box_of(result: Any) -> np.ndarray:
    box = getattr(result, "box_xywh", None)
    if box is None:
        box = result[0]
    return np.asarray(box, dtype=np.float64).reshape(4)


# ---------------------------------------------------------------------------------- tracking loop
@dataclass
class _Active:
    sequence: TrackingSequence
    state: Any
    boxes: list = field(default_factory=list)
    times: list = field(default_factory=list)

    @property
    def next_frame(self) -> int:
        return len(self.boxes)

    @property
    def done(self) -> bool:
        return len(self.boxes) >= len(self.sequence)


@dataclass
class RunReport:
    """What one process did: sequences tracked now, found complete (resumed) and skipped (name -> reason)."""

    tracked: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0


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

    Frame 0's box is the ground truth; its time is the ``initialize`` time. A step's wall time is
    shared equally by the sequences of the batch (per-frame seconds in the time files). Sequences
    that cannot be run (missing frame, bad first box, tracker error) are logged and reported in
    ``RunReport.skipped``; the run goes on with the others.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    results_dir = Path(results_dir)
    report = RunReport()
    queue: deque[TrackingSequence] = deque()
    for seq in sequences:
        if has_complete_results(results_dir, seq.name, len(seq), layout):
            report.resumed.append(seq.name)
        else:
            queue.append(seq)
    if report.resumed:
        logger.info("resuming: %d of %d sequences already have results", len(report.resumed), len(sequences))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(sequences), initial=len(report.resumed), desc=desc, unit="seq", disable=not progress)
    started = time.perf_counter()

    def skip(seq: TrackingSequence, reason: str) -> None:
        report.skipped[seq.name] = reason
        logger.warning("skipping sequence %s: %s", seq.name, reason)
        bar.update(1)

    def finish(item: _Active) -> None:
        write_sequence_results(
            results_dir,
            item.sequence.name,
            np.stack(item.boxes),
            np.asarray(item.times),
            layout,
            offset=result_file_offset(item.sequence.dataset),
        )
        report.tracked.append(item.sequence.name)
        bar.update(1)

    active: list[_Active] = []
    with ThreadPoolExecutor(max_workers=max(1, num_io_workers)) as pool:
        while queue or active:
            while queue and len(active) < batch_size:
                seq = queue.popleft()
                remove_temp_files(results_dir, seq.name, layout)
                problem = first_box_problem(seq)
                if problem is not None:
                    skip(seq, problem)
                    continue
                try:
                    frame = seq.load_frame(0)
                except Exception as exc:  # noqa: BLE001 - any unreadable frame skips the sequence
                    skip(seq, f"cannot load frame 0: {exc}")
                    continue
                try:
                    t0 = time.perf_counter()
                    state = tracker.initialize(frame, seq.boxes[0].copy())
                    init_time = time.perf_counter() - t0
                except Exception as exc:  # noqa: BLE001
                    skip(seq, f"tracker failed to initialise: {exc}")
                    continue
                item = _Active(seq, state, [seq.boxes[0].copy()], [init_time])
                report.frames += 1
                if item.done:
                    finish(item)
                else:
                    active.append(item)
            if not active:
                continue

            loaded = list(pool.map(_load, [(a.sequence, a.next_frame) for a in active]))
            ready = []
            for item, (frame, error) in zip(active, loaded):
                if error is None:
                    ready.append((item, frame))
                else:
                    skip(item.sequence, f"cannot load frame {item.next_frame}: {error}")
            stepped = _step(tracker, ready, skip)
            for item, box, seconds in stepped:
                item.boxes.append(box)
                item.times.append(seconds)
                report.frames += 1
            active = []
            for item, _ in ready:
                if item.sequence.name in report.skipped:
                    continue
                if item.done:
                    finish(item)
                else:
                    active.append(item)
            elapsed = time.perf_counter() - started
            bar.set_postfix(
                fps=f"{report.frames / max(elapsed, 1e-9):.1f}", active=len(active), refresh=False
            )
    bar.close()
    report.seconds = time.perf_counter() - started
    return report


def _load(job: tuple[TrackingSequence, int]) -> tuple[np.ndarray | None, str | None]:
    seq, index = job
    try:
        return seq.load_frame(index), None
    except Exception as exc:  # noqa: BLE001
        return None, str(exc)


def _step(tracker: Any, ready: list, skip) -> list[tuple[_Active, np.ndarray, float]]:
    """One batched ``tracker.step``; if it fails, retry one by one to isolate the failing sequence."""
    if not ready:
        return []
    t0 = time.perf_counter()
    try:
        results = tracker.step([item.state for item, _ in ready], [frame for _, frame in ready])
        if len(results) != len(ready):
            raise RuntimeError(f"tracker.step returned {len(results)} results for {len(ready)} frames")
        seconds = (time.perf_counter() - t0) / len(ready)
        return [(item, _box_of(res), seconds) for (item, _), res in zip(ready, results)]
    except Exception as exc:  # noqa: BLE001
        if len(ready) == 1:
            item = ready[0][0]
            skip(item.sequence, f"tracker failed at frame {item.next_frame}: {exc}")
            return []
        logger.warning("batched step failed (%s); retrying the %d sequences one by one", exc, len(ready))
    out = []
    for pair in ready:
        out.extend(_step(tracker, [pair], skip))
    return out


# ---------------------------------------------------------------------------------- metrics
def has_ground_truth(sequence: TrackingSequence) -> bool:
    """False when every box after the first is unknown (NaN): a test split with withheld ground truth.

    Sequences whose later boxes are known but invalid (all zero, absent) are scored, as the
    references score them.
    """
    return bool(np.all(np.isfinite(sequence.boxes[1:]), axis=1).any())


def _shifted(boxes: np.ndarray, offset: float) -> np.ndarray:
    if not offset:
        return boxes
    boxes = np.array(boxes, dtype=np.float64)
    boxes[:, :2] += offset
    return boxes


def _ope_curves(
    protocol: EvaluationProtocol,
    dataset_name: str,
    seq: TrackingSequence,
    file_boxes: np.ndarray,
    exclude_invalid_frames: bool,
) -> M.OPESequenceCurves:
    """``protocol``'s curves of one sequence, given the result file's boxes, in the protocol's coordinates."""
    offset = result_file_offset(seq.dataset or dataset_name)
    if protocol.coordinates == "file":
        pred, gt = file_boxes, _shifted(seq.boxes, offset)
    else:
        pred, gt = _shifted(file_boxes, -offset), seq.boxes
    visible = ~np.asarray(seq.absent, dtype=bool)
    return protocol.sequence_curves(pred, gt, visible, dataset_name, seq.name, exclude_invalid_frames)


def image_resolution(sequence: TrackingSequence) -> tuple[float, float]:
    """``(W, H)`` in pixels: ``attributes["resolution"]`` (tuple or ``"(W, H)"``) or frame 0's size."""
    value = sequence.attributes.get("resolution")
    if value is not None:
        if isinstance(value, str):
            value = ast.literal_eval(value)
        width, height = value
        return float(width), float(height)
    ref = sequence.frames[0]
    if isinstance(ref, (str, Path)):
        with Image.open(ref) as img:
            return float(img.width), float(img.height)
    frame = sequence.load_frame(0)
    return float(frame.shape[1]), float(frame.shape[0])


def got10k_visibility(sequence: TrackingSequence) -> np.ndarray:
    """``(N,)`` bool ``cover > 0``: ``attributes["cover"]`` when present, else ``~absent``."""
    cover = sequence.attributes.get("cover")
    if cover is not None and len(np.asarray(cover).reshape(-1)) == len(sequence.boxes):
        return np.asarray(cover, dtype=np.float64).reshape(-1) > 0
    return ~np.asarray(sequence.absent, dtype=bool)


def _fps(times: list[np.ndarray]) -> float | None:
    kept = [t[np.isfinite(t) & (t > 0)] for t in times if t is not None]
    kept = [t for t in kept if len(t)]
    if not kept:
        return None
    all_times = np.concatenate(kept)
    return float(len(all_times) / all_times.sum())


def compute_dataset_metrics(
    dataset_name: str,
    sequences: Sequence[TrackingSequence],
    results_dir: str | Path,
    strict: bool = False,
    exclude_invalid_frames: bool = False,
    protocol: str = DEFAULT_PROTOCOL,
) -> dict:
    """Score the result files in ``results_dir`` (either layout) against ``sequences`` under ``protocol``.

    ``protocol`` names one of :data:`~.protocols.PROTOCOLS` (default ``lorat``, the official LoRAT
    evaluation); its family decides the scores: OPE (success AUC, precision at 20 px, normalised
    precision at 0.2 where the protocol has it) or GOT-10k (AO, SR0.5, SR0.75); all fractions in
    [0, 1]. Result files may have another length than the ground truth where the protocol's reference
    accepts that (pytracking pads / cuts). Sequences whose ground truth after frame 0 is withheld
    (all NaN: test splits) are listed in ``"without_ground_truth"``; missing or invalid result files,
    and sequences the protocol's reference refuses, are listed in ``"errors"`` (name -> message naming
    the sequence) and left out, unless ``strict``.

    Returns:
        ``{"dataset", "protocol", "protocol_info", "family", "metrics" (None when nothing could be
        scored), "extra_metrics", "curves", "per_sequence" (name -> scalars), "fps" (frames / second
        from the time files), "num_sequences", "num_evaluated", "errors", "without_ground_truth"}``.

    Raises:
        FileNotFoundError / ValueError: with ``strict``, on the first bad or missing result; an
            unknown protocol always.
    """
    proto = get_protocol(protocol)
    family = proto.family(dataset_name)
    per_sequence: dict[str, dict] = {}
    curves: dict[str, M.OPESequenceCurves] = {}
    ious: dict[str, np.ndarray] = {}
    times: list[np.ndarray] = []
    errors: dict[str, str] = {}
    without_gt: list[str] = []
    for seq in sequences:
        try:
            result = read_sequence_results(results_dir, seq.name)
            times.append(result.times)
            if not has_ground_truth(seq):
                without_gt.append(seq.name)
                continue
            if family == "got10k":
                offset = result_file_offset(seq.dataset or dataset_name)
                seq_ious = M.got10k_sequence_ious(
                    result.boxes, _shifted(seq.boxes, offset), got10k_visibility(seq), image_resolution(seq),
                    name=seq.name,
                )  # fmt: skip
                ious[seq.name] = seq_ious
                per_sequence[seq.name] = M.got10k_sequence_scalars(seq_ious)
            else:
                seq_curves = _ope_curves(proto, dataset_name, seq, result.boxes, exclude_invalid_frames)
                curves[seq.name] = seq_curves
                per_sequence[seq.name] = seq_curves.scalars()
        except (FileNotFoundError, ValueError) as exc:
            if strict:
                raise
            errors[seq.name] = str(exc)
            logger.warning("left out of the metrics: %s", exc)

    metrics = extra = curve_data = None
    if family == "got10k" and ious and any(len(v) for v in ious.values()):
        full = M.got10k_metrics(ious)
        metrics = {k: full[k] for k in GOT10K_METRIC_KEYS}
        extra = {"num_frames": full["num_frames"]}
        curve_data = {"success": full["success_curve"], "overlap_thresholds": M.GOT10K_THRESHOLDS.tolist()}
    elif family == "ope" and curves:
        full = protocol_dataset_metrics(proto, curves)
        metrics = {k: full[k] for k in OPE_METRIC_KEYS if full[k] is not None}
        extra = {"op50": full["op50"], "op75": full["op75"]}
        curve_data = {
            "success": full["success_curve"],
            "precision": full["precision_curve"],
            "overlap_thresholds": proto.overlap_thresholds.tolist(),
            "center_thresholds": M.CENTER_THRESHOLDS.tolist(),
        }
        if full["norm_precision_curve"] is not None:
            curve_data["norm_precision"] = full["norm_precision_curve"]
            curve_data["norm_center_thresholds"] = M.NORM_CENTER_THRESHOLDS.tolist()
    return {
        "dataset": dataset_name,
        "protocol": proto.name,
        "protocol_info": proto.describe(),
        "family": family,
        "metrics": metrics,
        "extra_metrics": extra,
        "curves": curve_data,
        "per_sequence": per_sequence,
        "fps": _fps(times),
        "num_sequences": len(sequences),
        "num_evaluated": len(per_sequence),
        "errors": errors,
        "without_ground_truth": without_gt,
    }


# ---------------------------------------------------------------------------------- orchestration
def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_summary(output_dir: str | Path, summary: dict) -> Path:
    """Write ``summary`` to ``output_dir/summary.json`` atomically (adds a UTC ``timestamp``; NaN -> null).

    Expected keys (read by the Hub model card): ``dataset``, ``split``, ``model``, ``protocol`` (the
    evaluation protocol's name) and ``protocol_info``, ``metrics`` (``{"success_auc", "precision",
    "norm_precision"}`` or ``{"ao", "sr50", "sr75"}``), ``per_sequence``, ``fps``, ``skipped``.
    """
    summary = dict(summary)
    summary.setdefault("timestamp", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    path = Path(output_dir) / SUMMARY_FILE
    atomic_write_text(path, json.dumps(_json_safe(summary), indent=2, sort_keys=False) + "\n")
    return path


def accelerate_state() -> Any:
    """``accelerate.PartialState()``; on machines without CUDA (or with ``ACCELERATE_USE_CPU``) in CPU
    mode, so that ``torchrun`` / ``accelerate launch`` processes shard over gloo."""
    import os

    import torch
    from accelerate import PartialState

    use_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    return PartialState(cpu=use_cpu or not torch.cuda.is_available())


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
        tracker: object with ``initialize(frame, box_xywh) -> state`` and
            ``step(states, frames) -> [result with .box_xywh]`` (a ``LoratTracker``).
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
    skipped = dict(report.skipped)
    if num_processes > 1:
        shard_file = output_dir / f".shard-{index}.json"
        atomic_write_text(shard_file, json.dumps({"skipped": skipped, "run": run_info}))
        state.wait_for_everyone()
        if not state.is_main_process:
            return {"process_index": index, "run": run_info}
        run_info = {"num_processes": num_processes, "tracked": 0, "resumed": 0, "frames": 0, "seconds": 0.0}
        for i in range(num_processes):
            path = output_dir / f".shard-{i}.json"
            shard = json.loads(path.read_text())
            skipped.update(shard["skipped"])
            for key in ("tracked", "resumed", "frames"):
                run_info[key] += shard["run"][key]
            run_info["seconds"] = max(run_info["seconds"], shard["run"]["seconds"])
            path.unlink(missing_ok=True)

    summary = compute_dataset_metrics(dataset_name, sequences, results_dir, protocol=protocol)
    summary["skipped"] = {name: skipped[name] for name in names if name in skipped}
    summary["errors"] = {k: v for k, v in summary["errors"].items() if k not in summary["skipped"]}
    summary["results_dir"] = str(results_dir)
    summary["layout"] = layout
    summary["run"] = run_info
    return summary
