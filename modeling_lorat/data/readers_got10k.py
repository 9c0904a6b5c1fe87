"""GOT-10k reader (official layout), also used for GOT-10k-like folders (synthetic benchmark).

Layout::

    root/{train,val,test}/list.txt                  # sequence names, one per line
    root/<split>/<seq>/00000001.jpg ...
    root/<split>/<seq>/groundtruth.txt              # x,y,w,h pixels; test: first line only
    root/<split>/<seq>/absence.label                # train/val: 1 = target absent
    root/<split>/<seq>/cover.label                  # train/val: 0..8, 0 = fully occluded

``absent = absence | (cover == 0)``. In the test split, boxes after the first frame are NaN.
"""

from __future__ import annotations

from pathlib import Path

from .readers_common import (
    align_boxes,
    list_frames,
    natural_key,
    read_boxes,
    read_flags,
    read_labels,
    read_name_list,
    require_dir,
)
from .sequence import TrackingSequence

GOT10K_SPLITS = ("train", "val", "test")


def read_got10k_sequence(
    seq_dir: str | Path, dataset: str = "got10k", pad_missing: bool = False
) -> TrackingSequence:
    """Read one GOT-10k-layout sequence folder; ``pad_missing`` NaN-pads boxes (test split)."""
    seq_dir = Path(seq_dir)
    name = seq_dir.name
    require_dir(seq_dir, f"sequence {name!r}")
    boxes = read_boxes(seq_dir / "groundtruth.txt")
    frames = list_frames(seq_dir, name, consecutive=True)
    boxes = align_boxes(name, frames, boxes, pad_missing=pad_missing)
    absent = read_flags(seq_dir / "absence.label", len(boxes))
    cover_file = seq_dir / "cover.label"
    if cover_file.is_file():
        cover = read_labels(cover_file)
        if len(cover) != len(boxes):
            raise ValueError(f"{cover_file}: {len(cover)} labels but the sequence has {len(boxes)} frames")
        absent |= cover == 0
    return TrackingSequence(name, frames, boxes, absent, dataset=dataset)


def read_got10k_folder(
    folder: str | Path, dataset: str = "got10k", pad_missing: bool = False
) -> list[TrackingSequence]:
    """Read every sequence of one GOT-10k-like split folder.

    Sequence names come from ``folder/list.txt`` when present, otherwise from the sub-folders
    holding a ``groundtruth.txt``. Raises ``FileNotFoundError`` naming a listed but missing sequence.
    """
    folder = require_dir(folder, dataset)
    list_file = folder / "list.txt"
    if list_file.is_file():
        names = read_name_list(list_file)
    else:
        names = sorted(
            (p.name for p in folder.iterdir() if (p / "groundtruth.txt").is_file()), key=natural_key
        )
    return [read_got10k_sequence(folder / name, dataset=dataset, pad_missing=pad_missing) for name in names]


def read_got10k(root: str | Path, split: str = "test") -> list[TrackingSequence]:
    """Read GOT-10k ``split`` (``train``, ``val`` or ``test``) from ``root``.

    ``root`` is the dataset root holding the split folders, or a split folder itself.
    Boxes are ``x, y, w, h`` pixels; test boxes beyond the first frame are NaN.
    """
    if split not in GOT10K_SPLITS:
        raise ValueError(f"unknown GOT-10k split {split!r}; valid: {', '.join(GOT10K_SPLITS)}")
    root = require_dir(root, "got10k")
    folder = root / split
    if not folder.is_dir():
        if root.name == split or (root / "list.txt").is_file():
            folder = root
        else:
            raise FileNotFoundError(f"got10k: split folder not found: {folder}")
    return read_got10k_folder(folder, dataset="got10k", pad_missing=split == "test")
