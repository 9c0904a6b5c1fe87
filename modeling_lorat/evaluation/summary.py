"""``summary.json`` of an evaluation run: written atomically by the runner, read by the model card & co.

Expected keys (read by the Hub model card): ``dataset``, ``split``, ``model``, ``protocol`` (the
evaluation protocol's name) and ``protocol_info``, ``metrics`` (``{"success_auc", "precision",
"norm_precision"}`` or ``{"ao", "sr50", "sr75"}``), ``per_sequence``, ``fps``, ``skipped``.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..io_utils import atomic_write_text

SUMMARY_FILE = "summary.json"


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


def write_summary(output_dir: str | os.PathLike, summary: dict) -> Path:
    """Write ``summary`` to ``output_dir/summary.json`` atomically (adds a UTC ``timestamp``; NaN -> null).

    See the module docstring for the keys. Returns the path.
    """
    summary = dict(summary)
    summary.setdefault("timestamp", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    path = Path(output_dir) / SUMMARY_FILE
    atomic_write_text(path, json.dumps(_json_safe(summary), indent=2, sort_keys=False) + "\n")
    return path


def read_summary(path: str | os.PathLike) -> dict:
    """The summary of a run: ``path`` is its ``summary.json`` or the run folder holding it.

    Raises ``FileNotFoundError`` naming the file, or ``ValueError`` when it is not a JSON object.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"evaluation summary not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON evaluation summary ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: an evaluation summary is a JSON object, got {type(data).__name__}")
    return data
