"""Benchmark evaluation, split like pytracking's ``analysis/`` and running code.

Analysis (no tracker, no model): :mod:`.metrics` (official-toolkit metrics), :mod:`.protocols` (named
evaluation protocols), :mod:`.results_io` (result files), :mod:`.scoring` (scoring result folders),
:mod:`.summary` (``summary.json``), :mod:`.plots` and :mod:`.submission`.
Running: :mod:`.runner` (batched, resumable tracking of a benchmark) and :mod:`.sharding` (processes).

Boxes are ``x, y, w, h`` pixels everywhere; scores are fractions in [0, 1]. Names of the scoring and
running modules are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

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

_LAZY = {
    "compute_dataset_metrics": "scoring",
    "read_summary": "summary",
    "write_summary": "summary",
    "evaluate_tracker": "runner",
    "shard_sequences": "sharding",
}

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
    "read_summary",
    "resolve_results_dir",
    "shard_sequences",
    "write_sequence_results",
    "write_summary",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
