"""TrackingNet reader (official layout).

Layout::

    root/TRAIN_<k>/frames/<seq>/0.jpg, 1.jpg, ...   # numbered from 0, sorted numerically
    root/TRAIN_<k>/anno/<seq>.txt                   # x,y,w,h pixels, one line per frame
    root/TEST/frames/<seq>/...
    root/TEST/anno/<seq>.txt                        # first box only; the rest become NaN
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .readers_common import align_boxes, list_frames, natural_key, read_boxes, require_dir
from .sequence import TrackingSequence

TRACKINGNET_SPLITS = ("train", "test")


def _chunk_dirs(root: Path, split: str, chunks: Iterable[int] | None) -> list[Path]:
    if split == "test":
        return [require_dir(root / "TEST", "trackingnet test")]
    if chunks is not None:
        return [require_dir(root / f"TRAIN_{k}", f"trackingnet chunk TRAIN_{k}") for k in chunks]
    dirs = sorted((p for p in root.glob("TRAIN_*") if p.is_dir()), key=lambda p: natural_key(p.name))
    if not dirs:
        raise FileNotFoundError(f"trackingnet: no TRAIN_<k> folders under {root}")
    return dirs


def read_trackingnet(
    root: str | Path, split: str = "test", chunks: Iterable[int] | None = None
) -> list[TrackingSequence]:
    """Read TrackingNet ``split`` (``train``: all or the given ``TRAIN_<k>`` chunks; ``test``).

    Boxes are ``x, y, w, h`` pixels; ``attributes["chunk"]`` names the source folder.
    """
    if split not in TRACKINGNET_SPLITS:
        raise ValueError(f"unknown TrackingNet split {split!r}; valid: {', '.join(TRACKINGNET_SPLITS)}")
    root = require_dir(root, "trackingnet")
    sequences = []
    for chunk in _chunk_dirs(root, split, chunks):
        anno_dir = require_dir(chunk / "anno", f"trackingnet {chunk.name}")
        for anno in sorted(anno_dir.glob("*.txt"), key=lambda p: natural_key(p.name)):
            name = anno.stem
            boxes = read_boxes(anno)
            frames = list_frames(chunk / "frames" / name, name, consecutive=True)
            boxes = align_boxes(name, frames, boxes, pad_missing=split == "test")
            sequences.append(
                TrackingSequence(name, frames, boxes, dataset="trackingnet", attributes={"chunk": chunk.name})
            )
    return sequences
