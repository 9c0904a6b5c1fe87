"""Tracking result files in the community formats, written atomically.

Layouts (``results_dir`` is one tracker's folder):

* ``"ope"`` (pytracking / LaSOT / TrackingNet): ``<seq>.txt`` with one ``x,y,w,h`` line per frame
  (pixels, comma-separated) and ``<seq>_time.txt`` with one line of seconds per frame.
* ``"got10k"`` (GOT-10k toolkit / submission): ``<seq>/<seq>_001.txt`` and ``<seq>/<seq>_time.txt``.

Box values are written as the shortest decimal that reads back as the same float64 (Python's
``repr``), so scores and submission rasterisation computed from the files equal those computed from
the tracker's boxes in memory. Every file is written to a temporary file in the same folder and moved
into place with ``os.replace`` (:func:`modeling_lorat.io_utils.atomic_write_text`), the time file
before the box file, so a box file that exists is complete; :func:`remove_stale_temp_files` clears
what a killed run left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io_utils import (  # noqa: F401  (atomic_write_bytes, format_boxes: re-exported here)
    TEMP_SUFFIX,
    atomic_write_bytes,
    atomic_write_text,
    format_boxes,
    is_atomic_temp_name,
    read_number_rows,
)
from ..io_utils import read_result_boxes as read_boxes

LAYOUTS = ("ope", "got10k")


def result_paths(results_dir: str | Path, name: str, layout: str = "ope") -> tuple[Path, Path]:
    """``(box_file, time_file)`` of sequence ``name`` in ``results_dir`` for ``layout``."""
    results_dir = Path(results_dir)
    if layout == "ope":
        return results_dir / f"{name}.txt", results_dir / f"{name}_time.txt"
    if layout == "got10k":
        return results_dir / name / f"{name}_001.txt", results_dir / name / f"{name}_time.txt"
    raise ValueError(f"unknown result layout {layout!r}, expected one of {LAYOUTS}")


def format_times(times: np.ndarray) -> str:
    """Per-frame seconds -> text, one value per line."""
    return "".join(f"{t:.8f}\n" for t in np.asarray(times, dtype=np.float64).reshape(-1))


# Datasets whose result files use another pixel origin than the boxes in memory: LaSOT's toolkit (and
# pytracking on LaSOT) compare against 1-based ground truth, while the reader (like the official
# LoRAT loader) works in 0-based pixels; files get ``x + 1, y + 1`` and are shifted back on reading.
RESULT_FILE_OFFSETS = {"lasot": 1.0}


def result_file_offset(dataset: str | None) -> float:
    """Pixel offset between result files and in-memory boxes for ``dataset`` (1.0 for LaSOT, else 0)."""
    return RESULT_FILE_OFFSETS.get((dataset or "").lower().replace("-", "_"), 0.0)


def write_sequence_results(
    results_dir: str | Path,
    name: str,
    boxes: np.ndarray,
    times: np.ndarray | None = None,
    layout: str = "ope",
    offset: float = 0.0,
) -> Path:
    """Write one sequence's boxes (``(N, 4)`` xywh pixels) and per-frame times (seconds), atomically.

    ``offset`` is added to ``x, y`` in the file (see :func:`result_file_offset`); values are written
    exactly (see the module docstring). The time file is written first so that an existing box file
    marks a complete result. Returns the box file path.
    """
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    boxes[:, :2] += offset
    box_path, time_path = result_paths(results_dir, name, layout)
    if times is not None:
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if len(times) != len(boxes):
            raise ValueError(f"{name}: {len(times)} frame times for {len(boxes)} boxes")
        atomic_write_text(time_path, format_times(times))
    atomic_write_text(box_path, format_boxes(boxes, exact=True))
    return box_path


def read_times(path: str | Path, num_frames: int | None = None, name: str | None = None) -> np.ndarray:
    """Read a per-frame time file (seconds; first column if there are several repetitions).

    Raises:
        FileNotFoundError / ValueError: as :func:`~modeling_lorat.io_utils.read_result_boxes`.
    """
    path = Path(path)
    name = name or path.stem
    if not path.is_file():
        raise FileNotFoundError(f"{name}: time file not found: {path}")
    rows = read_number_rows(path, None, label=name)
    if num_frames is not None and len(rows) != num_frames:
        raise ValueError(f"{name}: time file {path} has {len(rows)} lines, expected {num_frames}")
    return np.asarray([r[0] for r in rows], dtype=np.float64)


def find_layout(results_dir: str | Path, name: str) -> str | None:
    """The layout in which sequence ``name`` has a box file in ``results_dir``, or None."""
    for layout in LAYOUTS:
        if result_paths(results_dir, name, layout)[0].is_file():
            return layout
    return None


@dataclass
class SequenceResult:
    """One sequence's stored result: ``boxes`` ``(N, 4)`` xywh pixels, ``times`` seconds or None."""

    name: str
    boxes: np.ndarray
    times: np.ndarray | None
    layout: str


def read_sequence_results(
    results_dir: str | Path,
    name: str,
    num_frames: int | None = None,
    layout: str | None = None,
    offset: float = 0.0,
) -> SequenceResult:
    """Read sequence ``name`` from ``results_dir`` (layout auto-detected unless given).

    ``offset`` is subtracted from the file's ``x, y`` (the inverse of :func:`write_sequence_results`).
    The time file is optional; a time file with the wrong length is ignored (times = None).

    Raises:
        FileNotFoundError: no box file for the sequence.
        ValueError: malformed box file or wrong number of lines (message names the sequence).
    """
    layout = layout or find_layout(results_dir, name)
    if layout is None:
        raise FileNotFoundError(
            f"{name}: no result file in {results_dir} (looked for {name}.txt and {name}/{name}_001.txt)"
        )
    box_path, time_path = result_paths(results_dir, name, layout)
    boxes = read_boxes(box_path, num_frames=num_frames, name=name)
    if offset:
        boxes[:, :2] -= offset
    times = None
    if time_path.is_file():
        try:
            times = read_times(time_path, num_frames=len(boxes), name=name)
        except ValueError:
            times = None
    return SequenceResult(name, boxes, times, layout)


def has_complete_results(results_dir: str | Path, name: str, num_frames: int, layout: str = "ope") -> bool:
    """True when ``name`` has a readable box file with exactly ``num_frames`` lines in ``layout``."""
    try:
        read_sequence_results(results_dir, name, num_frames=num_frames, layout=layout)
    except (FileNotFoundError, ValueError):
        return False
    return True


def remove_temp_files(results_dir: str | Path, name: str, layout: str = "ope") -> list[Path]:
    """Delete leftover temp files of sequence ``name`` (from an interrupted write). Returns them."""
    removed = []
    for path in result_paths(results_dir, name, layout):
        if path.parent.is_dir():
            for tmp in path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temp files of :func:`atomic_write_bytes` left in ``folder`` and below by a killed run.

    Only names of the form ``.<file>.<8 characters>.tmp`` are touched. Returns the removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.rglob(f"*{TEMP_SUFFIX}")):
        if path.is_file() and is_atomic_temp_name(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def resolve_results_dir(path: str | Path) -> Path:
    """A run folder (``runs/NAME`` with ``results/`` inside) or a results folder -> the results folder."""
    path = Path(path)
    if (path / "results").is_dir():
        return path / "results"
    return path
