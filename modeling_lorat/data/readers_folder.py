"""Readers for simple one-folder-per-sequence layouts: TNL2K and OTB.

TNL2K::

    root/<seq>/imgs/*.jpg|png
    root/<seq>/groundtruth.txt        # x,y,w,h pixels
    root/<seq>/language.txt           # optional, stored in attributes["language"]

OTB (OTB-2013/OTB-100 style)::

    root/<seq>/img/*.jpg
    root/<seq>/groundtruth_rect.txt   # comma, tab or whitespace separated x,y,w,h
    root/<seq>/groundtruth_rect.<k>.txt   # sequences with several targets -> "<seq>-<k>"

A few OTB sequences only annotate a range of their frames (``OTB_FRAME_RANGES``, 1-based
inclusive, as in the official toolkit).
"""

from __future__ import annotations

import re
from pathlib import Path

from .readers_common import (
    align_boxes,
    list_frames,
    natural_key,
    read_boxes,
    read_optional_text,
    require_dir,
)
from .sequence import TrackingSequence

OTB_FRAME_RANGES = {"david": (300, 770), "football1": (1, 74), "freeman3": (1, 460), "freeman4": (1, 283)}
_OTB_MULTI = re.compile(r"^groundtruth_rect\.(\d+)\.txt$")


def _sequence_dirs(root: Path, marker: str) -> list[Path]:
    dirs = [p for p in root.iterdir() if p.is_dir() and (p / marker).exists()]
    return sorted(dirs, key=lambda p: natural_key(p.name))


def read_tnl2k(root: str | Path) -> list[TrackingSequence]:
    """Read every TNL2K sequence under ``root`` (boxes ``x, y, w, h`` pixels, language in attributes)."""
    root = require_dir(root, "tnl2k")
    sequences = []
    for seq_dir in _sequence_dirs(root, "groundtruth.txt"):
        name = seq_dir.name
        boxes = read_boxes(seq_dir / "groundtruth.txt")
        frames = list_frames(seq_dir / "imgs", name)
        boxes = align_boxes(name, frames, boxes)
        language = read_optional_text(seq_dir / "language.txt")
        attributes = {"language": language} if language else {}
        sequences.append(TrackingSequence(name, frames, boxes, dataset="tnl2k", attributes=attributes))
    return sequences


def read_otb(root: str | Path) -> list[TrackingSequence]:
    """Read every OTB-style sequence under ``root`` (boxes ``x, y, w, h`` pixels)."""
    root = require_dir(root, "otb")
    sequences = []
    for seq_dir in _sequence_dirs(root, "img"):
        frames = list_frames(seq_dir / "img", seq_dir.name)
        start, end = OTB_FRAME_RANGES.get(seq_dir.name.lower(), (1, len(frames)))
        frames = frames[start - 1 : end]
        multi = sorted(
            (p for p in seq_dir.iterdir() if _OTB_MULTI.match(p.name)), key=lambda p: natural_key(p.name)
        )
        if multi:
            targets = [(f"{seq_dir.name}-{_OTB_MULTI.match(p.name).group(1)}", p) for p in multi]
        else:
            targets = [(seq_dir.name, seq_dir / "groundtruth_rect.txt")]
        for name, gt_file in targets:
            boxes = align_boxes(name, frames, read_boxes(gt_file))
            sequences.append(TrackingSequence(name, list(frames), boxes, dataset="otb"))
    return sequences
