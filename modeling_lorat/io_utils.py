"""File helpers shared by the whole package (no torch): atomic writes, natural sort, number-table text.

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: a temp file in the same folder moved into place
  with ``os.replace``, so a file is either its old or its new content, never half-written.
  :func:`is_atomic_temp_name` recognises the temp files a killed writer leaves behind.
* :func:`natural_sort_key`: ``2.jpg`` before ``10.jpg``.
* :func:`read_number_rows`: the one parser of the package's text tables (ground-truth boxes, result
  boxes, time files): one row of numbers per line, errors naming the file and the line;
  :func:`format_boxes` / :func:`read_result_boxes` write and read ``x,y,w,h`` result files.

Code shipped with checkpoints imports this module, so it imports no sibling of its own.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

TEMP_SUFFIX = ".tmp"
# ``.<name>.<8 random characters of mkstemp>.tmp``: the temp files of :func:`atomic_write_bytes`
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")
_DIGITS = re.compile(r"(\d+)")
_SEPARATORS = re.compile(r"[,;\s]+")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder + ``os.replace`` (never half-written).

    The folder is created when missing. ``fsync=False`` skips flushing to the disk before the rename
    (still atomic for readers; for bulk data that can be regenerated, such as synthetic frames).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are ordinary user files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, fsync: bool = True) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def is_atomic_temp_name(name: str) -> bool:
    """True for the name of a temp file of :func:`atomic_write_bytes` (``.<file>.<8 characters>.tmp``)."""
    return bool(_TEMP_NAME.match(name))


def natural_sort_key(name: str) -> list[Any]:
    """Sort key putting ``2.jpg`` before ``10.jpg`` (digit runs compared as integers, text case-blind)."""
    return [int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(name)]


def read_number_rows(
    path: str | os.PathLike,
    columns: int | None = None,
    *,
    label: str = "",
    nan_token_rows: bool = False,
) -> list[list[float]]:
    """Rows of numbers from a text file: one row a line, values separated by commas, semicolons or
    whitespace (a UTF-8 byte-order mark is skipped, trailing blank lines are ignored).

    Args:
        path: the file (it must exist; callers raise their own ``FileNotFoundError``).
        columns: values every row must have (None: any number, at least one).
        label: prefix of the error messages (e.g. the sequence name).
        nan_token_rows: a line holding the single token ``nan`` (any case) is a row of ``columns`` NaN
            (ground-truth files of some benchmarks mark unknown boxes that way).

    Raises:
        ValueError: a file that is not text, a blank line, a non-numeric value or a row of the wrong
            length; the message names the file and the 1-based line.
    """
    path = Path(path)
    prefix = f"{label}: " if label else ""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{prefix}{path} is not a text file: {exc}") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for number, line in enumerate(lines, start=1):
        where = f"{prefix}{path}, line {number}"
        tokens = [token for token in _SEPARATORS.split(line.strip()) if token]
        if not tokens:
            raise ValueError(f"{where}: blank line")
        if nan_token_rows and columns and len(tokens) == 1 and tokens[0].lower() == "nan":
            rows.append([float("nan")] * columns)
            continue
        if columns is not None and len(tokens) != columns:
            hint = " (x,y,w,h)" if columns == 4 else ""
            raise ValueError(f"{where}: expected {columns} values{hint}, got {len(tokens)}: {line.strip()!r}")
        try:
            rows.append([float(token) for token in tokens])
        except ValueError:
            raise ValueError(f"{where}: non-numeric value in {line.strip()!r}") from None
    return rows


def format_boxes(boxes: Any, exact: bool = False) -> str:
    """``(N, 4)`` xywh pixel boxes -> text, one ``x,y,w,h`` line per frame.

    4 decimals, or with ``exact`` the shortest text that reads back as the same float64.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if exact:
        return "".join(f"{x!r},{y!r},{w!r},{h!r}\n" for x, y, w, h in boxes.tolist())
    return "".join(f"{x:.4f},{y:.4f},{w:.4f},{h:.4f}\n" for x, y, w, h in boxes)


def read_result_boxes(
    path: str | os.PathLike, num_frames: int | None = None, name: str | None = None
) -> np.ndarray:
    """Read an ``x,y,w,h`` result file (comma, semicolon, tab or space separated) as ``(N, 4)`` float64.

    Raises:
        FileNotFoundError: missing file (the message names the sequence, ``name`` or the file's stem).
        ValueError: a malformed line, or ``num_frames`` given and the line count differs.
    """
    path = Path(path)
    name = name or path.stem
    if not path.is_file():
        raise FileNotFoundError(f"{name}: result file not found: {path}")
    rows = read_number_rows(path, 4, label=name)
    if num_frames is not None and len(rows) != num_frames:
        raise ValueError(
            f"{name}: result file {path} has {len(rows)} lines, expected {num_frames} (one per frame)"
        )
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)
