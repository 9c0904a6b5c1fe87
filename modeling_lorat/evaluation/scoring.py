"""Scoring stored results against a benchmark's ground truth (analysis: no tracker, no model).

:func:`compute_dataset_metrics` reads one tracker's result files (:mod:`.results_io`) and scores them
under a named evaluation protocol (:mod:`.protocols`; default ``lorat``, the official LoRAT evaluation):
OPE curves and scores (success AUC, precision, normalised precision) or GOT-10k's AO / SR. The runner
(:mod:`.runner`), ``lorat plot`` and the plots (:mod:`.plots`) all score through it; like pytracking's
``analysis/``, this side never imports the running code.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.sequence import TrackingSequence
from . import metrics as M
from .protocols import DEFAULT_PROTOCOL, EvaluationProtocol, canonical, get_protocol, protocol_dataset_metrics
from .results_io import read_sequence_results, result_file_offset

logger = logging.getLogger(__name__)

GOT10K_DATASETS = ("got10k",)
OPE_METRIC_KEYS = ("success_auc", "precision", "norm_precision")
GOT10K_METRIC_KEYS = ("ao", "sr50", "sr75")


def layout_for(dataset_name: str) -> str:
    """Result-file layout written for a benchmark: GOT-10k's own, the flat OPE one otherwise."""
    return "got10k" if canonical(dataset_name) in GOT10K_DATASETS else "ope"


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
