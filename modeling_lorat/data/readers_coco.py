"""COCO reader: every object annotation becomes a one-frame ``TrackingSequence``.

Layout::

    root/annotations/instances_<split>.json     # e.g. instances_train2017.json
    root/<split>/<file_name>.jpg

Crowd annotations and boxes with ``w <= 0`` or ``h <= 0`` are skipped. Images are never opened
while reading: :class:`CocoSequences` keeps compact arrays and builds each ``TrackingSequence``
(frame = image path) on access, so the ~860k train2017 objects cost a few tens of MB. Training
uses the single frame as both template and search image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .readers_common import require_dir
from .sequence import TrackingSequence


class CocoSequences(Sequence):
    """Lazy, list-like collection of one-frame COCO sequences (``x, y, w, h`` pixel boxes)."""

    def __init__(
        self,
        image_dir: Path,
        file_names: list[str],
        image_ids: np.ndarray,
        image_index: np.ndarray,
        annotation_ids: np.ndarray,
        category_ids: np.ndarray,
        categories: dict[int, str],
        boxes: np.ndarray,
        dataset: str = "coco",
    ) -> None:
        self.image_dir = Path(image_dir)
        self.file_names = file_names
        self.image_ids = image_ids
        self.image_index = image_index
        self.annotation_ids = annotation_ids
        self.category_ids = category_ids
        self.categories = categories
        self.boxes = boxes
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.annotation_ids)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"COCO sequence index {index} out of range ({len(self)})")
        image = int(self.image_index[index])
        category = int(self.category_ids[index])
        annotation = int(self.annotation_ids[index])
        return TrackingSequence(
            name=f"{int(self.image_ids[image]):012d}_{annotation}",
            frames=[self.image_dir / self.file_names[image]],
            boxes=self.boxes[index : index + 1].copy(),
            dataset=self.dataset,
            attributes={
                "image_id": int(self.image_ids[image]),
                "annotation_id": annotation,
                "category_id": category,
                "category": self.categories.get(category, ""),
            },
        )


def read_coco_annotations(
    annotation_file: str | Path, image_dir: str | Path, dataset: str = "coco"
) -> CocoSequences:
    """Parse a COCO ``instances_*.json`` into lazy one-frame sequences (images are not opened)."""
    annotation_file = Path(annotation_file)
    if not annotation_file.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {annotation_file}")
    with annotation_file.open("r", encoding="utf-8") as handle:
        data = json.load(handle)
    for key in ("images", "annotations"):
        if key not in data:
            raise ValueError(f"{annotation_file}: not a COCO instances file (no {key!r} key)")
    images = data["images"]
    position = {image["id"]: i for i, image in enumerate(images)}
    categories = {int(c["id"]): str(c.get("name", "")) for c in data.get("categories", [])}
    kept = []
    for ann in data["annotations"]:
        box = ann.get("bbox")
        if ann.get("iscrowd", 0) or box is None or len(box) != 4 or box[2] <= 0 or box[3] <= 0:
            continue
        if ann["image_id"] not in position:
            raise ValueError(f"{annotation_file}: annotation {ann.get('id')} refers to unknown image")
        kept.append(ann)
    return CocoSequences(
        image_dir=Path(image_dir),
        file_names=[image["file_name"] for image in images],
        image_ids=np.asarray([image["id"] for image in images], dtype=np.int64),
        image_index=np.asarray([position[a["image_id"]] for a in kept], dtype=np.int64),
        annotation_ids=np.asarray([a.get("id", i) for i, a in enumerate(kept)], dtype=np.int64),
        category_ids=np.asarray([a.get("category_id", -1) for a in kept], dtype=np.int64),
        categories=categories,
        boxes=np.asarray([a["bbox"] for a in kept], dtype=np.float64).reshape(-1, 4),
        dataset=dataset,
    )


def read_coco(root: str | Path, split: str = "train2017") -> CocoSequences:
    """Read COCO ``split`` (``train2017``, ``val2017``, ... ; ``train``/``val`` mean the 2017 ones)."""
    split = {"train": "train2017", "val": "val2017"}.get(split, split)
    root = require_dir(root, "coco")
    annotation_file = root / "annotations" / f"instances_{split}.json"
    if not annotation_file.is_file():
        raise FileNotFoundError(f"coco: annotation file not found: {annotation_file}")
    return read_coco_annotations(annotation_file, root / split)
