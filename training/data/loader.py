"""The training stream: a deterministic ``IterableDataset`` of processed pairs, and its collate function.

Positions in the stream are fixed by arithmetic, not by iteration. With ``P`` processes, per-device batch
``B`` and local micro-batch counter ``t`` (``t = optimizer_step * grad_accumulation + micro_step``), slot
``i`` of process ``r`` is the *global sample index*

    k = (t * P + r) * B + i

and its random generator is ``numpy.random.default_rng([seed, k])``: it draws the source, the sequence,
the frames, the crop jitter and the augmentation. Resuming at step ``s`` therefore only sets
``start_batch = s * grad_accumulation``; nothing is replayed. Processes never share a sample index, and
dataloader worker ``w`` produces micro-batches ``t = start_batch + w, + W, ...`` so the DataLoader's
round-robin returns them in order whatever the number of workers.

Bad samples (no visible frame, empty box, undecodable frame, a search crop that cannot show the target,
any other error while building a pair) are skipped: the same generator draws a new pair, and each
sample carries the count of what was skipped for it, by reason, so the training loop can log totals.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .pair_sampler import PairSampler
from .sources import StreamSource
from .transform import BadSampleError, PairTransform

logger = logging.getLogger(__name__)

MODEL_INPUTS = ("pixel_values_template", "pixel_values_search", "template_mask", "labels")


@dataclass(frozen=True)
class StreamLayout:
    """Where this process's micro-batches sit in the global sample stream."""

    seed: int
    batch_size: int
    process_index: int = 0
    num_processes: int = 1
    start_batch: int = 0

    def sample_index(self, batch: int, slot: int) -> int:
        """Global sample index of slot ``slot`` of local micro-batch ``batch``."""
        return (batch * self.num_processes + self.process_index) * self.batch_size + slot


def sample_rng(seed: int, sample_index: int) -> np.random.Generator:
    """The generator of one sample (independent of process, worker and iteration history)."""
    return np.random.default_rng([int(seed), int(sample_index)])


class TrainingPairDataset(IterableDataset):
    """Endless (or ``num_batches`` long) stream of processed training pairs for one process.

    Items are dicts with the model inputs (see :func:`collate_pairs`), ``sample_index`` (global index),
    ``sample_key`` (``source/sequence#template-search``) and ``skipped`` (reason -> count).
    """

    def __init__(
        self,
        sampler: PairSampler,
        transform: PairTransform,
        layout: StreamLayout,
        max_attempts: int = 100,
        num_batches: int | None = None,
    ) -> None:
        super().__init__()
        self.sampler, self.transform, self.layout = sampler, transform, layout
        self.max_attempts, self.num_batches = max_attempts, num_batches

    def make_sample(self, batch: int, slot: int, lane_count: int) -> dict[str, Any]:
        """Build the sample of ``(batch, slot)``; ``lane_count`` is the lane's running sample counter."""
        index = self.layout.sample_index(batch, slot)
        rng = sample_rng(self.layout.seed, index)
        skipped: Counter[str] = Counter()
        last_error = ""
        for _ in range(self.max_attempts):
            try:
                sampled = self.sampler(rng, lane_count)
                item = self.transform(sampled.pair, rng)
            except BadSampleError as exc:
                skipped[exc.reason] += 1
                last_error = str(exc)
                continue
            except Exception as exc:  # a broken file or reader must not stop training
                skipped[f"error:{type(exc).__name__}"] += 1
                last_error = f"{type(exc).__name__}: {exc}"
                if skipped[f"error:{type(exc).__name__}"] == 1:
                    logger.warning("skipping a bad sample (%s)", last_error)
                continue
            if item is None:
                skipped["crop_failed"] += 1
                continue
            item["sample_index"] = index
            item["sample_key"] = sampled.key
            item["skipped"] = dict(skipped)
            return item
        raise RuntimeError(
            f"no usable training pair after {self.max_attempts} attempts for sample {index} "
            f"(skipped: {dict(skipped)}; last error: {last_error or 'none'}); check the --dataset sources"
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        layout = self.layout
        lane = (worker + layout.start_batch) % workers
        for source in self.sampler.sources:
            if isinstance(source, StreamSource):
                source.bind(layout.process_index, layout.num_processes, lane, workers)
        stop = None if self.num_batches is None else layout.start_batch + self.num_batches
        for batch in itertools.count(layout.start_batch + worker, workers):
            if stop is not None and batch >= stop:
                return
            for slot in range(layout.batch_size):
                lane_count = (batch // workers) * layout.batch_size + slot
                if info is None:
                    yield _single_threaded(self.make_sample, batch, slot, lane_count)
                else:
                    yield self.make_sample(batch, slot, lane_count)


def _single_threaded(fn, *args):
    # Crops are small: torch's intra-op thread pool costs more than it saves (10x on 2 shared cores).
    # In the main process (num_workers=0) run the data ops on one thread and restore the model's count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(threads)


def collate_pairs(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of samples: ``pixel_values_template (B, 3, t, t)``, ``pixel_values_search (B, 3, s, s)``
    float32 normalised, ``template_mask (B, g, g)`` long, ``labels (B, 4)`` float32 normalised xyxy (NaN rows
    = negative pairs), ``sample_index (B,)`` long, ``sample_keys`` list and ``skipped`` (reason -> count)."""
    batch: dict[str, Any] = {name: torch.stack([item[name] for item in items]) for name in MODEL_INPUTS}
    batch["sample_index"] = torch.tensor([item["sample_index"] for item in items], dtype=torch.long)
    batch["sample_keys"] = [item["sample_key"] for item in items]
    skipped: Counter[str] = Counter()
    for item in items:
        skipped.update(item["skipped"])
    batch["skipped"] = dict(skipped)
    return batch


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def make_dataloader(
    dataset: TrainingPairDataset, num_workers: int = 0, pin_memory: bool = False
) -> DataLoader:
    """A ``DataLoader`` yielding collated micro-batches of ``dataset.layout.batch_size`` in stream order."""
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(worker_init_fn=_worker_init, prefetch_factor=4, persistent_workers=False)
    return DataLoader(
        dataset,
        batch_size=dataset.layout.batch_size,
        num_workers=num_workers,
        collate_fn=collate_pairs,
        pin_memory=pin_memory,
        **kwargs,
    )
