"""Tracking data: the in-memory sequence type, benchmark readers, the parquet/Hub schema and
synthetic data. Heavy dependencies (``datasets``, ``pyarrow``) are imported only when used."""

from .hub_schema import (
    EncodedFrame,
    iter_sequences,
    load_sequences,
    row_to_sequence,
    sequence_to_row,
    write_parquet_shards,
)
from .readers import (
    DATASET_NAMES,
    LASOT_TEST_SEQUENCES,
    get_dataset,
    read_boxes,
    read_coco,
    read_got10k,
    read_lasot,
    read_lasot_ext,
    read_otb,
    read_tnl2k,
    read_trackingnet,
)
from .sequence import FrameRef, TrackingSequence, load_image
from .synthetic import (
    make_synthetic_sequence,
    synthetic_iterable_dataset,
    synthetic_sequences,
    write_synthetic_benchmark,
)

__all__ = [
    "DATASET_NAMES",
    "LASOT_TEST_SEQUENCES",
    "EncodedFrame",
    "FrameRef",
    "TrackingSequence",
    "get_dataset",
    "iter_sequences",
    "load_image",
    "load_sequences",
    "make_synthetic_sequence",
    "read_boxes",
    "read_coco",
    "read_got10k",
    "read_lasot",
    "read_lasot_ext",
    "read_otb",
    "read_tnl2k",
    "read_trackingnet",
    "row_to_sequence",
    "sequence_to_row",
    "synthetic_iterable_dataset",
    "synthetic_sequences",
    "write_parquet_shards",
    "write_synthetic_benchmark",
]
