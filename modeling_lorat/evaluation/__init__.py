"""Benchmark evaluation: official-toolkit metrics, result files, batched runner, plots, submissions.

Boxes are ``x, y, w, h`` pixels everywhere; scores are fractions in [0, 1].
"""

from .metrics import (
    CENTER_THRESHOLDS,
    NORM_CENTER_THRESHOLDS,
    OVERLAP_THRESHOLDS,
    center_error,
    got10k_metrics,
    got10k_rect_iou,
    got10k_sequence_ious,
    iou_overlap,
    ope_dataset_metrics,
    ope_sequence_curves,
    ope_sequence_errors,
)
from .results_io import read_sequence_results, resolve_results_dir, write_sequence_results
from .runner import compute_dataset_metrics, evaluate_tracker, shard_sequences, write_summary

__all__ = [
    "CENTER_THRESHOLDS",
    "NORM_CENTER_THRESHOLDS",
    "OVERLAP_THRESHOLDS",
    "center_error",
    "compute_dataset_metrics",
    "evaluate_tracker",
    "got10k_metrics",
    "got10k_rect_iou",
    "got10k_sequence_ious",
    "iou_overlap",
    "ope_dataset_metrics",
    "ope_sequence_curves",
    "ope_sequence_errors",
    "read_sequence_results",
    "resolve_results_dir",
    "shard_sequences",
    "write_sequence_results",
    "write_summary",
]
