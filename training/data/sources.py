"""Training data sources: ``--dataset`` specs -> objects that hand out random sequences.

Spec syntax: ``NAME[@SPLIT][:ROOT]``.

================= ===================================================================================
``synthetic``     deterministic synthetic sequences generated on the fly (``synthetic:N`` = N sequences,
                  default 10000); random access, nothing on disk
``synthetic_stream`` the same generator as a streaming ``datasets.IterableDataset`` (exercises the
                  streaming path without files)
``lasot:ROOT``    LaSOT ``train`` split (``lasot@all:ROOT`` for another split)
``got10k:ROOT``   GOT-10k ``train``
``trackingnet:ROOT`` TrackingNet ``train`` (all ``TRAIN_k`` chunks found)
``coco:ROOT``     COCO ``train2017`` objects, one-frame sequences
``parquet:PATH``  shards in the hub schema (``modeling_lorat.data.hub_schema``), a local folder / file or
                  a Hub dataset repo id, always *streamed*
================= ===================================================================================

Random-access sources (readers, ``synthetic``) pick a sequence uniformly with the sample's RNG.
Streaming sources keep a pool of ``pool_size`` sequences per data lane (process x dataloader worker):
the stream is split with ``datasets.distributed.split_dataset_by_node`` so every lane reads different rows
(shard-level when the number of shards is divisible by the number of lanes), and one new row replaces the
oldest pool entry every ``refresh_every`` samples of the lane. Which rows are in the pool is therefore a
function of the lane's sample counter only, so resuming re-reads (without decoding) the rows consumed so
far and continues exactly; it requires the same number of processes and dataloader workers.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modeling_lorat.data import (
    TrackingSequence,
    get_dataset,
    load_sequences,
    make_synthetic_sequence,
    row_to_sequence,
    synthetic_iterable_dataset,
)
from modeling_lorat.data.synthetic import sequence_seed

from .pair_sampler import SequenceSource
from .transform import BadSampleError

logger = logging.getLogger(__name__)

#: Dataset names accepted by ``--dataset`` and their default training split.
TRAIN_SPLITS: dict[str, str | None] = {
    "synthetic": None,
    "synthetic_stream": None,
    "lasot": "train",
    "got10k": "train",
    "trackingnet": "train",
    "coco": "train2017",
    "parquet": "train",
}
_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_\-]+)(?:@(?P<split>[^:]+))?(?::(?P<root>.+))?$")
DEFAULT_SYNTHETIC_SEQUENCES = 10000


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed ``--dataset`` value."""

    name: str
    root: str | None = None
    split: str | None = None

    def __str__(self) -> str:
        split = f"@{self.split}" if self.split else ""
        return f"{self.name}{split}" + (f":{self.root}" if self.root else "")


def parse_dataset_spec(spec: str) -> DatasetSpec:
    """Parse ``NAME[@SPLIT][:ROOT]``; raises ``ValueError`` for unknown names or a missing root and
    ``FileNotFoundError`` for a local root that does not exist."""
    match = _SPEC.match(spec.strip())
    if not match:
        raise ValueError(f"bad --dataset {spec!r}; expected NAME[@SPLIT][:ROOT], e.g. got10k:/data/GOT-10k")
    name = match["name"].lower().replace("-", "_")
    if name not in TRAIN_SPLITS:
        raise ValueError(
            f"unknown dataset {match['name']!r} in {spec!r}; valid names: {', '.join(TRAIN_SPLITS)}"
        )
    root, split = match["root"], match["split"] or TRAIN_SPLITS[name]
    if name in ("synthetic", "synthetic_stream"):
        if root is not None and not root.isdigit():
            raise ValueError(f"{name} takes an optional number of sequences ({name}:1000), got {root!r}")
        return DatasetSpec(name, root, None)
    if not root:
        raise ValueError(f"dataset {name!r} needs a root: --dataset {name}:/path/to/{name}")
    looks_remote = name == "parquet" and re.fullmatch(r"[\w.\-]+/[\w.\-]+", root) and not Path(root).exists()
    if not looks_remote and not Path(root).expanduser().exists():
        raise FileNotFoundError(f"--dataset {spec}: root not found: {root}")
    return DatasetSpec(name, str(Path(root).expanduser()) if not looks_remote else root, split)


class ListSource(SequenceSource):
    """Random access over a list-like of sequences (reader output); uniform choice."""

    def __init__(self, name: str, sequences) -> None:
        if len(sequences) == 0:
            raise ValueError(f"dataset {name} has no sequences")
        self.name, self.sequences = name, sequences

    def __len__(self) -> int:
        return len(self.sequences)

    def pick(self, rng: np.random.Generator, sample_count: int) -> TrackingSequence:
        return self.sequences[int(rng.integers(len(self.sequences)))]


class SyntheticSource(SequenceSource):
    """``num_sequences`` synthetic sequences, generated on demand from ``(seed, index)`` (small cache)."""

    def __init__(
        self,
        seed: int,
        num_sequences: int = DEFAULT_SYNTHETIC_SEQUENCES,
        num_frames: int = 60,
        frame_size: tuple[int, int] = (160, 120),
        cache_size: int = 32,
    ) -> None:
        if num_sequences < 1:
            raise ValueError(f"synthetic needs at least one sequence, got {num_sequences}")
        self.name = "synthetic"
        self.seed, self.num_sequences = int(seed), int(num_sequences)
        self.num_frames, self.frame_size, self.cache_size = num_frames, tuple(frame_size), cache_size
        self._cache: OrderedDict[int, TrackingSequence] = OrderedDict()

    def __len__(self) -> int:
        return self.num_sequences

    def sequence(self, index: int) -> TrackingSequence:
        """Sequence ``index`` (bit-identical for the same seed)."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        seq = make_synthetic_sequence(
            sequence_seed(self.seed, index), self.num_frames, self.frame_size, name=f"synth_{index:06d}"
        )
        self._cache[index] = seq
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return seq

    def pick(self, rng: np.random.Generator, sample_count: int) -> TrackingSequence:
        return self.sequence(int(rng.integers(self.num_sequences)))


class StreamSource(SequenceSource):
    """A pool of sequences refilled from a streamed ``datasets.IterableDataset`` (see module docstring).

    ``make_dataset`` is a picklable zero-argument callable returning the full (unsplit) stream of hub-schema
    rows. Call :meth:`bind` in the process / worker that reads, before :meth:`pick`.
    """

    def __init__(
        self, name: str, make_dataset: Callable[[], object], pool_size: int = 32, refresh_every: int = 16
    ) -> None:
        if pool_size < 1 or refresh_every < 1:
            raise ValueError(f"pool_size and refresh_every must be >= 1, got {pool_size}, {refresh_every}")
        self.name, self.make_dataset = name, make_dataset
        self.pool_size, self.refresh_every = int(pool_size), int(refresh_every)
        self._split: tuple[int, int] | None = None
        self._reset()

    def _reset(self) -> None:
        self._rows: Iterator | None = None
        self._pending: dict | None = None
        self._dataset = None
        self._epoch = 0
        self._rows_this_epoch = 0
        self._consumed = 0
        self._pool: list[TrackingSequence | None] = []

    def bind(self, process_index: int, num_processes: int, lane: int, num_lanes: int) -> None:
        """Read the split of lane ``(process, lane)`` from now on (state reset to the stream start)."""
        self._reset()
        self._split = (process_index * num_lanes + lane, num_processes * num_lanes)
        self._fallbacks = [(process_index, num_processes), None] if num_lanes > 1 else [None]
        if num_processes == 1:
            self._fallbacks = [None]

    def _open(self) -> None:
        from datasets.distributed import split_dataset_by_node

        dataset = self.make_dataset()
        candidates = [self._split, *self._fallbacks] if self._split and self._split[1] > 1 else [None]
        for split in candidates:
            ds = (
                dataset
                if split is None
                else split_dataset_by_node(dataset, rank=split[0], world_size=split[1])
            )
            rows = iter(ds)
            try:
                first = next(rows)
            except StopIteration:
                logger.warning("%s: split %s of the stream is empty; using a coarser split", self.name, split)
                continue
            self._dataset, self._rows, self._pending = ds, rows, first
            return
        raise ValueError(f"dataset {self.name}: the stream has no rows")

    def _next_row(self) -> dict:
        if self._rows is None:
            self._open()
        if self._pending is not None:
            row, self._pending = self._pending, None
            self._rows_this_epoch += 1
            return row
        try:
            row = next(self._rows)
        except StopIteration:
            if self._rows_this_epoch == 0:
                raise ValueError(f"dataset {self.name}: the stream has no rows") from None
            self._epoch += 1
            self._rows_this_epoch = 0
            if hasattr(self._dataset, "set_epoch"):
                self._dataset.set_epoch(self._epoch)
            self._rows = iter(self._dataset)
            try:
                row = next(self._rows)
            except StopIteration:
                raise ValueError(f"dataset {self.name}: the stream has no rows") from None
        self._rows_this_epoch += 1
        return row

    def _to_sequence(self, row: dict) -> TrackingSequence | None:
        try:
            return row_to_sequence(row)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("%s: unusable row %r: %s", self.name, row.get("name"), exc)
            return None

    def advance_to(self, sample_count: int) -> None:
        """Load rows until ``pool_size + sample_count // refresh_every`` rows have been consumed; rows that
        would be evicted before use are read but not decoded."""
        target = self.pool_size + sample_count // self.refresh_every
        if target < self._consumed:
            raise ValueError(f"{self.name}: sample counter went backwards ({sample_count})")
        while self._consumed < target - self.pool_size:
            self._next_row()
            self._consumed += 1
        while self._consumed < target:
            seq = self._to_sequence(self._next_row())
            slot = self._consumed % self.pool_size
            if len(self._pool) < self.pool_size:
                self._pool.append(seq)
            else:
                self._pool[slot] = seq
            self._consumed += 1

    def pick(self, rng: np.random.Generator, sample_count: int) -> TrackingSequence:
        if self._split is None:
            self.bind(0, 1, 0, 1)
        self.advance_to(sample_count)
        seq = self._pool[int(rng.integers(len(self._pool)))]
        if seq is None:
            raise BadSampleError("bad_row", f"{self.name}: the drawn row could not be decoded")
        return seq


def _parquet_stream(path_or_repo: str, split: str):
    return load_sequences(path_or_repo, split=split, streaming=True)


def _synthetic_stream(seed: int, num_sequences: int | None):
    return synthetic_iterable_dataset(seed, num_sequences=num_sequences)


def build_source(
    spec: DatasetSpec, seed: int, pool_size: int = 32, refresh_every: int = 16
) -> SequenceSource:
    """The source for one parsed spec. Readers run here (once, in the main process)."""
    count = int(spec.root) if spec.name.startswith("synthetic") and spec.root else None
    if spec.name == "synthetic":
        return SyntheticSource(seed, count or DEFAULT_SYNTHETIC_SEQUENCES)
    if spec.name == "synthetic_stream":
        count = count or DEFAULT_SYNTHETIC_SEQUENCES
        return StreamSource(
            str(spec), functools.partial(_synthetic_stream, seed, count), pool_size, refresh_every
        )
    if spec.name == "parquet":
        return StreamSource(
            str(spec), functools.partial(_parquet_stream, spec.root, spec.split), pool_size, refresh_every
        )
    return ListSource(str(spec), get_dataset(spec.name, spec.root, spec.split))
