"""Parquet / Hugging Face Hub schema for tracking sequences: one row per sequence.

=============== ================================ =================================================
column          Arrow type                       meaning
=============== ================================ =================================================
``name``        ``string``                       sequence name, unique within ``dataset``
``dataset``     ``string``                       source dataset (``got10k``, ``lasot``, ...)
``frames``      ``list<binary>``                 encoded JPEG/PNG bytes, one per frame (or empty)
``frame_paths`` ``list<string>``                 image paths, one per frame (or empty)
``boxes``       ``list<fixed_size_list<double>[4]>`` ``x, y, w, h`` pixels per frame, NaN = unknown
``absent``      ``list<bool>``                   True where the target is absent / fully occluded
``attributes``  ``string``                       JSON object (class, language, chunk, ...)
=============== ================================ =================================================

Both ``frames`` and ``frame_paths`` are always present; exactly one of them is non-empty, except
for synthetic rows: those carry no pixels, only ``attributes["synthetic"] = {"seed", "num_frames",
"frame_size"}`` from which :func:`row_to_sequence` regenerates the frames deterministically
(see :mod:`modeling_lorat.data.synthetic`). ``frame_paths`` rows are only meaningful on the
machine that wrote them; use embedded ``frames`` for the Hub. Embedded frames are the original
file bytes when the source is a JPEG/PNG file (no re-encoding), otherwise lossless PNG.

Shards are written as ``<out_dir>/data/<split>-00000-of-00003.parquet`` (the Hub's default
naming, so ``load_dataset(repo_id)`` finds the splits without a loading script).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .sequence import TrackingSequence

COLUMNS = ("name", "dataset", "frames", "frame_paths", "boxes", "absent", "attributes")
_RAW_SUFFIXES = {".jpg", ".jpeg", ".png"}


def arrow_schema():
    """The ``pyarrow.Schema`` of a shard."""
    import pyarrow as pa

    return pa.schema(
        [
            ("name", pa.string()),
            ("dataset", pa.string()),
            ("frames", pa.list_(pa.binary())),
            ("frame_paths", pa.list_(pa.string())),
            ("boxes", pa.list_(pa.list_(pa.float64(), 4))),
            ("absent", pa.list_(pa.bool_())),
            ("attributes", pa.string()),
        ]
    )


def hub_features():
    """The same schema as ``datasets.Features``."""
    from datasets import Features, List, Value

    return Features(
        {
            "name": Value("string"),
            "dataset": Value("string"),
            "frames": List(Value("binary")),
            "frame_paths": List(Value("string")),
            "boxes": List(List(Value("float64"), length=4)),
            "absent": List(Value("bool")),
            "attributes": Value("string"),
        }
    )


class EncodedFrame:
    """Picklable frame reference holding encoded image bytes; decodes on call to ``(H, W, 3)`` uint8."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)

    def __call__(self) -> np.ndarray:
        from ..video_io import to_rgb_uint8

        with Image.open(io.BytesIO(self.data)) as image:
            return to_rgb_uint8(image)  # 16-bit PNGs scaled, not clipped

    def __repr__(self) -> str:
        return f"EncodedFrame({len(self.data)} bytes)"


def encode_png(frame: np.ndarray) -> bytes:
    """Losslessly encode an ``(H, W, 3)`` uint8 frame as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _frame_bytes(seq: TrackingSequence, index: int) -> bytes:
    ref = seq.frames[index]
    if isinstance(ref, EncodedFrame):
        return ref.data
    if not callable(ref):
        path = Path(ref)
        if not path.is_file():
            raise FileNotFoundError(f"sequence {seq.name!r}: frame not found: {path}")
        if path.suffix.lower() in _RAW_SUFFIXES:
            return path.read_bytes()
    return encode_png(seq.load_frame(index))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"attribute value of type {type(value).__name__} is not JSON serialisable")


def sequence_to_row(seq: TrackingSequence, embed_frames: bool = True) -> dict:
    """Convert a sequence to a schema row.

    ``embed_frames=True`` stores encoded bytes in ``frames``; ``False`` stores paths in
    ``frame_paths`` (frames must then be paths), except for synthetic sequences
    (``attributes["synthetic"]``) which are stored without pixels.
    """
    synthetic = "synthetic" in seq.attributes and all(callable(f) for f in seq.frames)
    frames: list[bytes] = []
    paths: list[str] = []
    if embed_frames:
        frames = [_frame_bytes(seq, i) for i in range(len(seq))]
    elif not synthetic:
        if any(callable(f) for f in seq.frames):
            raise ValueError(
                f"sequence {seq.name!r}: frame_paths mode needs path frames, got in-memory frames"
            )
        paths = [str(Path(f).resolve()) for f in seq.frames]
    if len(seq) != len(seq.boxes):
        raise ValueError(f"sequence {seq.name!r}: {len(seq)} frames but {len(seq.boxes)} boxes")
    return {
        "name": seq.name,
        "dataset": seq.dataset,
        "frames": frames,
        "frame_paths": paths,
        "boxes": seq.boxes.tolist(),
        "absent": seq.absent.tolist(),
        "attributes": json.dumps(seq.attributes, default=_json_default, sort_keys=True),
    }


def row_to_sequence(row: dict) -> TrackingSequence:
    """Convert a schema row back to a ``TrackingSequence`` (embedded frames decode lazily)."""
    name = str(row.get("name", ""))
    attributes = json.loads(row.get("attributes") or "{}")
    boxes = np.array(row.get("boxes") or [], dtype=np.float64).reshape(-1, 4)
    absent = row.get("absent")
    absent = np.array(absent, dtype=bool) if absent else np.zeros(len(boxes), dtype=bool)
    if row.get("frames"):
        frames: list = [EncodedFrame(data) for data in row["frames"]]
    elif row.get("frame_paths"):
        frames = [Path(p) for p in row["frame_paths"]]
    elif "synthetic" in attributes:
        from .synthetic import make_synthetic_sequence

        spec = attributes["synthetic"]
        frames = list(make_synthetic_sequence(**spec).frames)
    else:
        raise ValueError(f"row {name!r} has neither frames, frame_paths nor a synthetic spec")
    if len(frames) != len(boxes):
        raise ValueError(f"row {name!r}: {len(frames)} frames but {len(boxes)} boxes")
    return TrackingSequence(
        name, frames, boxes, absent, dataset=str(row.get("dataset", "")), attributes=attributes
    )


def _shard_writer(path: Path):
    import pyarrow.parquet as pq

    return pq.ParquetWriter(path, arrow_schema(), compression="zstd")


def write_parquet_shards(
    sequences: Iterable[TrackingSequence],
    out_dir: str | Path,
    max_rows_per_shard: int = 1000,
    embed_frames: bool = True,
    split: str = "train",
    max_shard_bytes: int = 512 * 2**20,
) -> list[Path]:
    """Write ``sequences`` as ``out_dir/data/<split>-XXXXX-of-NNNNN.parquet`` shards.

    A shard is closed after ``max_rows_per_shard`` rows or once it holds about ``max_shard_bytes``
    of frame data. Shards are written to temporary files and renamed into place at the end
    (atomic per file); older ``<split>-*.parquet`` shards in ``out_dir/data`` are then removed.
    Returns the shard paths in order.
    """
    import pyarrow as pa

    if not re.fullmatch(r"\w+", split):
        raise ValueError(f"split name must be letters, digits or underscores, got {split!r}")
    if max_rows_per_shard < 1:
        raise ValueError(f"max_rows_per_shard must be >= 1, got {max_rows_per_shard}")
    data_dir = Path(out_dir) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    schema = arrow_schema()
    temp_paths: list[Path] = []
    writer = None
    rows_in_shard = bytes_in_shard = 0
    batch: list[dict] = []
    batch_bytes = 0

    def flush() -> None:
        nonlocal batch, batch_bytes
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        batch, batch_bytes = [], 0

    try:
        for seq in sequences:
            if writer is None:
                temp_paths.append(data_dir / f".tmp-{os.getpid()}-{split}-{len(temp_paths):05d}.parquet")
                writer = _shard_writer(temp_paths[-1])
            row = sequence_to_row(seq, embed_frames=embed_frames)
            size = sum(len(f) for f in row["frames"]) + 64 * len(row["boxes"]) + 256
            batch.append(row)
            batch_bytes += size
            rows_in_shard += 1
            bytes_in_shard += size
            if len(batch) >= 256 or batch_bytes >= 64 * 2**20:
                flush()
            if rows_in_shard >= max_rows_per_shard or bytes_in_shard >= max_shard_bytes:
                flush()
                writer.close()
                writer, rows_in_shard, bytes_in_shard = None, 0, 0
        if writer is not None:
            flush()
            writer.close()
            writer = None
    except BaseException:
        if writer is not None:
            writer.close()
        for path in temp_paths:
            path.unlink(missing_ok=True)
        raise
    total = len(temp_paths)
    if total == 0:
        raise ValueError("write_parquet_shards: no sequences to write")
    final = [data_dir / f"{split}-{i:05d}-of-{total:05d}.parquet" for i in range(total)]
    for temp, path in zip(temp_paths, final):
        os.replace(temp, path)
    keep = set(final)
    for stale in data_dir.glob(f"{split}-*-of-*.parquet"):
        if stale not in keep:
            stale.unlink()
    return final


def _local_data_files(path: Path, split: str) -> list[str]:
    if path.is_file():
        return [str(path)]
    for folder in (path / "data", path):
        files = sorted(folder.glob(f"{split}-*.parquet"))
        if files:
            return [str(f) for f in files]
    raise FileNotFoundError(f"no '{split}-*.parquet' shards in {path} or {path / 'data'}")


def load_sequences(path_or_repo_id: str | Path, split: str = "train", streaming: bool = True):
    """Load schema rows from local shards or a Hub dataset repo.

    A local file / folder (``<dir>/data/<split>-*.parquet``) is read with
    ``load_dataset("parquet", data_files=..., streaming=streaming)``; anything else is treated
    as a Hub repo id and read with ``load_dataset(repo_id, split=split, streaming=streaming)``.
    Returns a ``datasets.IterableDataset`` when streaming (one shard per file, so
    ``split_dataset_by_node`` can give each rank different files), else a ``datasets.Dataset``.
    Convert rows with :func:`iter_sequences` / :func:`row_to_sequence`.
    """
    from datasets import load_dataset

    local = Path(path_or_repo_id)
    if local.exists():
        files = _local_data_files(local, split)
        return load_dataset("parquet", data_files={split: files}, split=split, streaming=streaming)
    if isinstance(path_or_repo_id, Path) or str(path_or_repo_id).startswith((".", "/", "~")):
        raise FileNotFoundError(f"dataset path not found: {path_or_repo_id}")
    return load_dataset(str(path_or_repo_id), split=split, streaming=streaming)


def iter_sequences(dataset: Iterable[dict]) -> Iterator[TrackingSequence]:
    """Yield a ``TrackingSequence`` per row of a (streaming) dataset in the hub schema."""
    for row in dataset:
        yield row_to_sequence(row)
