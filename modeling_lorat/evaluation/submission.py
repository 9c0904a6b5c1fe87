"""Benchmark-server submission archives (GOT-10k test, TrackingNet test), written atomically.

* GOT-10k: ``<seq>/<seq>_001.txt`` (``x,y,w,h`` per frame) and ``<seq>/<seq>_time.txt`` (seconds per
  frame) for every sequence, folders at the top level of the zip.
* TrackingNet: ``<seq>.txt`` files (comma-separated ``x,y,w,h`` per frame) at the zip root.

Result folders in either layout (``results_io``) are accepted and re-written in the right one.

Like the official LoRAT submissions (its result handlers for GOT-10k test and TrackingNet test set
``bbox_rasterize``), boxes are rasterised to whole pixels by default: ``x1, y1`` floored,
``x2, y2`` to ``floor(x2 + 1 - 1e-4)``; pass ``rasterize=False`` to keep the sub-pixel boxes.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..box_ops import rasterize_xyxy, xywh_to_xyxy, xyxy_to_xywh
from ..data.sequence import TrackingSequence
from .results_io import format_boxes, format_times, read_sequence_results, resolve_results_dir

SUBMISSION_DATASETS = ("got10k", "trackingnet")


def discover_sequences(results_dir: str | Path) -> list[str]:
    """Sequence names with a box file in ``results_dir`` (``<seq>.txt`` or ``<seq>/<seq>_001.txt``), sorted."""
    results_dir = Path(results_dir)
    names = set()
    for path in results_dir.iterdir():
        if (
            path.is_file()
            and path.suffix == ".txt"
            and not path.name.endswith("_time.txt")
            and not path.name.startswith(".")
        ):
            names.add(path.stem)
        elif path.is_dir() and (path / f"{path.name}_001.txt").is_file():
            names.add(path.name)
    return sorted(names)


def rasterize_boxes_xywh(boxes: np.ndarray, name: str = "") -> np.ndarray:
    """``(N, 4)`` xywh boxes -> the whole-pixel boxes the official LoRAT submissions contain.

    Raises ``ValueError`` naming the sequence for non-finite values.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not np.isfinite(boxes).all():
        raise ValueError(f"{name}: result boxes contain NaN or infinite values")
    return xyxy_to_xywh(rasterize_xyxy(xywh_to_xyxy(boxes)))


def _boxes_text(boxes: np.ndarray, name: str, rasterize: bool) -> str:
    return format_boxes(rasterize_boxes_xywh(boxes, name) if rasterize else boxes)


def _expected(
    results_dir: Path, sequences: Sequence[TrackingSequence | str] | None
) -> list[tuple[str, int | None]]:
    if sequences is None:
        names = discover_sequences(results_dir)
        if not names:
            raise FileNotFoundError(f"no result files in {results_dir}")
        return [(name, None) for name in names]
    return [(s, None) if isinstance(s, str) else (s.name, len(s)) for s in sequences]


def _write_zip(output_zip: str | Path, members: dict[str, str]) -> Path:
    output_zip = Path(output_zip)
    output_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output_zip.parent, prefix=f".{output_zip.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for arcname, text in members.items():
                archive.writestr(arcname, text)
        os.replace(tmp, output_zip)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return output_zip


def package_got10k_submission(
    results_dir: str | Path,
    output_zip: str | Path,
    sequences: Sequence[TrackingSequence | str] | None = None,
    rasterize: bool = True,
) -> Path:
    """Zip a GOT-10k test submission from ``results_dir`` (run folder or results folder).

    Args:
        results_dir: folder with one result per sequence (either layout).
        output_zip: the archive to write (atomically).
        sequences: expected sequences (names, or ``TrackingSequence`` to also check frame counts);
            default: every sequence found.
        rasterize: write whole-pixel boxes as the official LoRAT submissions do (default).

    Raises:
        FileNotFoundError / ValueError: a missing or malformed result or time file, naming the sequence.
    """
    results_dir = resolve_results_dir(results_dir)
    members: dict[str, str] = {}
    for name, num_frames in _expected(results_dir, sequences):
        result = read_sequence_results(results_dir, name, num_frames=num_frames)
        if result.times is None:
            raise ValueError(f"{name}: no valid per-frame time file ({name}_time.txt), required by GOT-10k")
        members[f"{name}/{name}_001.txt"] = _boxes_text(result.boxes, name, rasterize)
        members[f"{name}/{name}_time.txt"] = format_times(result.times)
    return _write_zip(output_zip, members)


def package_trackingnet_submission(
    results_dir: str | Path,
    output_zip: str | Path,
    sequences: Sequence[TrackingSequence | str] | None = None,
    rasterize: bool = True,
) -> Path:
    """Zip a TrackingNet test submission (``<seq>.txt`` at the zip root) from ``results_dir``.

    Arguments and errors as :func:`package_got10k_submission` (time files are not needed).
    """
    results_dir = resolve_results_dir(results_dir)
    members: dict[str, str] = {}
    for name, num_frames in _expected(results_dir, sequences):
        result = read_sequence_results(results_dir, name, num_frames=num_frames)
        members[f"{name}.txt"] = _boxes_text(result.boxes, name, rasterize)
    return _write_zip(output_zip, members)


def package_submission(
    dataset: str,
    results_dir: str | Path,
    output_zip: str | Path,
    sequences: Sequence[TrackingSequence | str] | None = None,
    rasterize: bool = True,
) -> Path:
    """Dispatch to the GOT-10k or TrackingNet packager (``dataset`` in ``SUBMISSION_DATASETS``)."""
    if dataset == "got10k":
        return package_got10k_submission(results_dir, output_zip, sequences, rasterize)
    if dataset == "trackingnet":
        return package_trackingnet_submission(results_dir, output_zip, sequences, rasterize)
    raise ValueError(
        f"no submission format for {dataset!r}; expected one of {', '.join(SUBMISSION_DATASETS)}"
    )
