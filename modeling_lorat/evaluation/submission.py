"""Benchmark-server submission archives (GOT-10k test, TrackingNet test), as the servers' toolkits write them.

* GOT-10k: what the ``got10k`` toolkit produces for a deterministic tracker (``ExperimentGOT10k.run``
  with ``is_deterministic=True``, then ``report`` on the test subset): a zip with a folder entry
  ``<seq>/`` per sequence holding ``<seq>_001.txt`` (``x,y,w,h`` per frame, ``%.3f``, comma separated;
  one repetition: the toolkit runs a deterministic tracker once) and ``<seq>_time.txt`` (seconds per
  frame, ``%.8f``).
* TrackingNet: ``<seq>.txt`` files at the zip root (``x,y,w,h`` per frame, ``%.2f``, comma separated),
  the layout of the TrackingNet devkit's example submission (``dummy_subm.zip``; its ``metrics.py``
  finds each file by name) and the number format of the official LoRAT TrackingNet writer.

Result folders in either layout (``results_io``) are accepted. Like the official LoRAT submissions (its
GOT-10k / TrackingNet handlers set ``bbox_rasterize``), boxes are rasterised to whole pixels by
default: ``x1, y1`` floored, ``x2, y2`` to ``floor(x2 + 1 - 1e-4)``, from the exact float64 values the
result files hold (``results_io`` writes them exactly); ``rasterize=False`` keeps the sub-pixel boxes
at the format's precision. With the dataset's sequences given, every result file must have one line
per frame. Archives are written atomically.
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
from .results_io import format_times, read_sequence_results, read_times, resolve_results_dir, result_paths

SUBMISSION_DATASETS = ("got10k", "trackingnet")
GOT10K_BOX_FORMAT = "%.3f"  # got10k toolkit, ExperimentGOT10k._record
TRACKINGNET_BOX_FORMAT = "%.2f"  # official LoRAT TrackingNetResultFileWriter / the devkit's example


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


def savetxt_text(values: np.ndarray, fmt: str) -> str:
    """Rows of ``values`` as ``numpy.savetxt(..., fmt=fmt, delimiter=",")`` writes them."""
    values = np.asarray(values, dtype=np.float64)
    values = values.reshape(len(values), -1)
    row = ",".join([fmt] * values.shape[1]) + "\n"
    return "".join(row % tuple(v) for v in values)


def _boxes_text(boxes: np.ndarray, name: str, rasterize: bool, fmt: str) -> str:
    if not np.isfinite(boxes).all():
        raise ValueError(f"{name}: result boxes contain NaN or infinite values")
    return savetxt_text(rasterize_boxes_xywh(boxes, name) if rasterize else boxes, fmt)


def _expected(
    results_dir: Path, sequences: Sequence[TrackingSequence | str] | None
) -> list[tuple[str, int | None]]:
    if sequences is None:
        names = discover_sequences(results_dir)
        if not names:
            raise FileNotFoundError(f"no result files in {results_dir}")
        return [(name, None) for name in names]
    return [(s, None) if isinstance(s, str) else (s.name, len(s)) for s in sequences]


def _write_zip(output_zip: str | Path, members: dict[str, str | None]) -> Path:
    """Members in order; a name ending in ``/`` with None is a folder entry."""
    output_zip = Path(output_zip)
    output_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output_zip.parent, prefix=f".{output_zip.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for arcname, text in members.items():
                if text is None:
                    info = zipfile.ZipInfo(arcname)
                    info.external_attr = (0o40755 << 16) | 0x10  # a directory, as shutil.make_archive adds it
                    archive.writestr(info, b"")
                else:
                    archive.writestr(arcname, text)
        os.chmod(tmp, 0o644)
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
        results_dir: folder with one result per sequence (either layout) and its time file.
        output_zip: the archive to write (atomically).
        sequences: expected sequences (names, or ``TrackingSequence`` to also check that every
            result has one line per frame); default: every sequence found.
        rasterize: write whole-pixel boxes as the official LoRAT submissions do (default).

    Raises:
        FileNotFoundError / ValueError: a missing or malformed result or time file, or one whose line
            count differs from the frame count, naming the file and both counts.
    """
    results_dir = resolve_results_dir(results_dir)
    folders: dict[str, str | None] = {}
    files: dict[str, str | None] = {}
    for name, num_frames in _expected(results_dir, sequences):
        result = read_sequence_results(results_dir, name, num_frames=num_frames)
        time_path = result_paths(results_dir, name, result.layout)[1]
        if not time_path.is_file():
            raise FileNotFoundError(
                f"{name}: time file not found: {time_path} (GOT-10k submissions need one)"
            )
        times = read_times(time_path, num_frames=len(result.boxes), name=name)
        folders[f"{name}/"] = None
        files[f"{name}/{name}_001.txt"] = _boxes_text(result.boxes, name, rasterize, GOT10K_BOX_FORMAT)
        files[f"{name}/{name}_time.txt"] = format_times(times)
    return _write_zip(output_zip, {**folders, **files})


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
    members: dict[str, str | None] = {}
    for name, num_frames in _expected(results_dir, sequences):
        result = read_sequence_results(results_dir, name, num_frames=num_frames)
        members[f"{name}.txt"] = _boxes_text(result.boxes, name, rasterize, TRACKINGNET_BOX_FORMAT)
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
