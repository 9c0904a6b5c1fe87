"""Helpers shared by the benchmark readers: ground-truth parsing, flag files, frame listing.

All boxes are ``x, y, w, h`` in pixels (float64); unknown rows are NaN.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..io_utils import natural_sort_key, read_number_rows

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_SEPARATORS = re.compile(r"[,;\s]+")
natural_key = natural_sort_key  # the readers' name for the package's one natural-sort key


def _tokens(line: str) -> list[str]:
    return [token for token in _SEPARATORS.split(line.strip()) if token]


def read_boxes(path: str | Path, num_columns: int = 4) -> np.ndarray:
    """Read a ground-truth file with one ``x, y, w, h`` box (pixels) per line.

    Values may be separated by commas, tabs, semicolons or spaces (parsed by
    :func:`modeling_lorat.io_utils.read_number_rows`). A row containing ``nan`` (any case), or a single
    ``nan`` token, becomes a NaN row. Trailing blank lines are ignored.

    Returns:
        ``(N, num_columns)`` float64 array.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a row has the wrong number of values, is not numeric or is blank,
            naming the file and the 1-based line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {path}")
    rows = read_number_rows(path, num_columns, nan_token_rows=True)
    boxes = np.asarray(rows, dtype=np.float64).reshape(-1, num_columns)
    boxes[np.isnan(boxes).any(axis=1)] = np.nan  # a partly unknown box is unknown
    return boxes


def read_labels(path: str | Path) -> np.ndarray:
    """Read integer per-frame labels separated by commas/whitespace/newlines (e.g. ``absence.label``).

    Returns ``(N,)`` int64. Raises ``FileNotFoundError`` / ``ValueError`` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    tokens = _tokens(path.read_text(encoding="utf-8-sig"))
    try:
        return np.asarray([int(float(token)) for token in tokens], dtype=np.int64)
    except ValueError:
        raise ValueError(f"{path}: labels must be integers") from None


def read_flags(path: str | Path, length: int) -> np.ndarray:
    """``(length,)`` bool flags from ``path`` (non-zero = True); all False when the file is missing.

    Raises ``ValueError`` naming the file when it holds a different number of values.
    """
    path = Path(path)
    if not path.is_file():
        return np.zeros(length, dtype=bool)
    labels = read_labels(path)
    if len(labels) != length:
        raise ValueError(f"{path}: {len(labels)} flags but the ground truth has {length} rows")
    return labels != 0


def list_frames(folder: str | Path, sequence: str, consecutive: bool = False) -> list[Path]:
    """Image files in ``folder``, sorted numerically by name.

    With ``consecutive=True`` (benchmarks whose frames are numbered ``00000001.jpg, 00000002.jpg, ...``)
    a gap or a duplicate in the numbering raises, so a lost frame file can never shift every later
    frame against its ground truth or result line (see :func:`check_frame_numbering`).

    Raises ``FileNotFoundError`` naming ``sequence`` if the folder is missing or holds no images,
    or (``consecutive``) naming the first missing frame file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"sequence {sequence!r}: frame folder not found: {folder}")
    frames = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    if not frames:
        raise FileNotFoundError(f"sequence {sequence!r}: no image frames in {folder}")
    frames = sorted(frames, key=lambda p: natural_key(p.name))
    if consecutive:
        check_frame_numbering(frames, sequence)
    return frames


_FRAME_NUMBER = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


def check_frame_numbering(frames: list[Path], sequence: str) -> None:
    """Raise ``FileNotFoundError`` naming the first missing frame when numbered frames have a gap.

    ``frames`` are sorted frame files named ``<prefix><number>.<ext>`` (e.g. ``00000001.jpg`` or
    ``0.jpg``); numbers must run consecutively from the first one. Two files with the same number
    (``1.jpg`` and ``001.jpg``) raise ``ValueError``. Files not named that way are not checked.
    """
    parsed = [_FRAME_NUMBER.match(p.stem) for p in frames]
    if not all(parsed) or len({m.group("prefix") for m in parsed}) != 1:
        return
    numbers = [int(m.group("number")) for m in parsed]
    for previous, current, path, match in zip(numbers, numbers[1:], frames[1:], parsed[1:]):
        if current == previous:
            raise ValueError(f"sequence {sequence!r}: two frame files are numbered {current} ({path.name})")
        if current != previous + 1:
            digits = match.group("number")
            width = len(digits) if digits.startswith("0") else 0
            missing = f"{match.group('prefix')}{previous + 1:0{width}d}{path.suffix}"
            count = current - previous - 1
            more = f" (and {count - 1} more before {path.name})" if count > 1 else ""
            raise FileNotFoundError(
                f"sequence {sequence!r}: frame {missing} is missing from {path.parent}{more}; "
                "frames are numbered consecutively, so every later frame would shift against its "
                "ground truth"
            )


def align_boxes(
    sequence: str, frames: list[Path], boxes: np.ndarray, *, pad_missing: bool = False
) -> np.ndarray:
    """Check that there is one box per frame; return the (possibly NaN-padded) boxes.

    ``pad_missing=True`` (test splits that only publish the first box) pads missing rows with
    NaN. Otherwise a count mismatch raises: ``FileNotFoundError`` when frames are missing,
    ``ValueError`` when there are more frames than boxes; both name the sequence.
    """
    num_frames, num_boxes = len(frames), len(boxes)
    if num_boxes > num_frames:
        raise FileNotFoundError(
            f"sequence {sequence!r}: {num_boxes} ground-truth boxes but only {num_frames} frames "
            "(missing frames?)"
        )
    if num_boxes < num_frames:
        if not pad_missing:
            raise ValueError(f"sequence {sequence!r}: {num_frames} frames but only {num_boxes} boxes")
        padding = np.full((num_frames - num_boxes, boxes.shape[1]), np.nan)
        boxes = np.concatenate([boxes, padding], axis=0)
    return boxes


def require_dir(path: str | Path, what: str) -> Path:
    """Return ``Path(path)``; raise ``FileNotFoundError`` mentioning ``what`` if it is not a folder."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: folder not found: {path}")
    return path


def read_name_list(path: str | Path) -> list[str]:
    """Non-empty stripped lines of a sequence list file (``list.txt``, ``testing_set.txt``)."""
    return [line.strip() for line in Path(path).read_text(encoding="utf-8-sig").splitlines() if line.strip()]


def read_optional_text(path: str | Path) -> str | None:
    """Stripped text of ``path`` or ``None`` when absent (language descriptions)."""
    path = Path(path)
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8", errors="replace").strip()
