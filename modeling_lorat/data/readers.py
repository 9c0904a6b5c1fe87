"""Dataset registry: one reader per on-disk layout, shared by evaluation and training.

``get_dataset(name, root, split)`` returns the sequences of a benchmark / training source.
Default splits (``split=None``): lasot ``test``, lasot_ext ``test``, got10k ``test``,
trackingnet ``test``, coco ``train2017``, parquet ``train``; tnl2k, otb and synthetic have no
splits (``root`` is the folder holding the sequences).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .readers_coco import read_coco, read_coco_annotations
from .readers_common import natural_key, read_boxes, read_flags, read_labels
from .readers_folder import read_otb, read_tnl2k
from .readers_got10k import read_got10k, read_got10k_folder
from .readers_lasot import LASOT_TEST_SEQUENCES, read_lasot, read_lasot_ext
from .readers_trackingnet import read_trackingnet
from .sequence import TrackingSequence

__all__ = [
    "DATASET_NAMES",
    "DEFAULT_SPLITS",
    "LASOT_TEST_SEQUENCES",
    "get_dataset",
    "natural_key",
    "read_boxes",
    "read_coco",
    "read_coco_annotations",
    "read_flags",
    "read_got10k",
    "read_got10k_folder",
    "read_labels",
    "read_lasot",
    "read_lasot_ext",
    "read_otb",
    "read_tnl2k",
    "read_trackingnet",
]


def _no_split(reader: Callable[[str | Path], list[TrackingSequence]], name: str):
    def read(root: str | Path, split: str | None) -> list[TrackingSequence]:
        if split not in (None, "test", "all"):
            raise ValueError(f"{name} has no split {split!r} (omit split to read every sequence)")
        return reader(root)

    return read


def _read_parquet(root: str | Path, split: str | None) -> list[TrackingSequence]:
    from .hub_schema import iter_sequences, load_sequences

    return list(iter_sequences(load_sequences(root, split=split or "train", streaming=True)))


def _read_synthetic(root: str | Path) -> list[TrackingSequence]:
    if not Path(root).is_dir():
        raise FileNotFoundError(
            f"synthetic: folder not found: {root} (create it with data.synthetic.write_synthetic_benchmark)"
        )
    return read_got10k_folder(root, dataset="synthetic")


DEFAULT_SPLITS = {
    "lasot": "test",
    "lasot_ext": "test",
    "got10k": "test",
    "trackingnet": "test",
    "coco": "train2017",
    "parquet": "train",
}
_READERS: dict[str, Callable[[str | Path, str | None], Sequence[TrackingSequence]]] = {
    "lasot": lambda root, split: read_lasot(root, split or "test"),
    "lasot_ext": lambda root, split: read_lasot_ext(root, split or "test"),
    "got10k": lambda root, split: read_got10k(root, split or "test"),
    "trackingnet": lambda root, split: read_trackingnet(root, split or "test"),
    "tnl2k": _no_split(read_tnl2k, "tnl2k"),
    "otb": _no_split(read_otb, "otb"),
    "coco": lambda root, split: read_coco(root, split or "train2017"),
    "parquet": _read_parquet,
    "synthetic": _no_split(_read_synthetic, "synthetic"),
}
DATASET_NAMES: tuple[str, ...] = tuple(_READERS)


def get_dataset(name: str, root: str | Path, split: str | None = None) -> Sequence[TrackingSequence]:
    """Read dataset ``name`` (one of :data:`DATASET_NAMES`) from ``root``.

    Returns a list of ``TrackingSequence`` (boxes ``x, y, w, h`` pixels, frames as lazy refs);
    for ``coco`` a lazy list-like :class:`~modeling_lorat.data.readers_coco.CocoSequences`.
    Raises ``ValueError`` for an unknown name or split, ``FileNotFoundError`` for missing data.
    """
    key = name.lower().replace("-", "_")
    if key not in _READERS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    return _READERS[key](root, split)
