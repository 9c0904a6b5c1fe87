"""Siamese training-pair sampling (official ``siamese_training_pair_sampling``, ``sample_mode: interval``).

Rules, as in the official sampler with the LoRAT config (``max_gaps: 100``, no auto-extend, no
negative pairs by default):

* a source is drawn with probability proportional to its weight (official 1:1:1:1), then a sequence of
  that source uniformly;
* the template frame is drawn uniformly among the frames where the target is visible
  (``TrackingSequence.valid()``: known box, positive size, not absent);
* the search frame is drawn uniformly among the *other* visible frames at most ``max_gap`` frames away
  (``|x - z| <= max_gap``, ``x != z``); when there is none, template and search are the same frame;
* one-frame sequences (COCO images) therefore always give a pair from the same image;
* a sequence without any visible frame is a bad sample (the loader counts it and draws again).

With ``negative_ratio > 0`` (not used by the official recipe) a pair is negative with that probability:
the search frame is a visible frame of another randomly drawn sequence and the label is a NaN row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modeling_lorat.data import TrackingSequence

from .transform import BadSampleError, FramePair

#: Official maximum template/search frame distance.
OFFICIAL_MAX_GAP = 100


def sample_frame_indices(
    visible: np.ndarray, max_gap: int | None, rng: np.random.Generator
) -> tuple[int, int]:
    """``(template, search)`` frame indices of one track (official ``interval`` mode).

    ``visible`` is the ``(N,)`` bool mask of usable frames. Raises :class:`BadSampleError` when no frame
    is visible.
    """
    visible = np.asarray(visible, dtype=bool)
    candidates = np.flatnonzero(visible)
    if len(candidates) == 0:
        raise BadSampleError("no_visible_frame", "the target is not visible in any frame")
    z = int(candidates[0] if len(visible) == 1 else rng.choice(candidates))
    if len(visible) == 1:
        return z, z
    begin, end = 0, len(visible)
    if max_gap is not None:
        if max_gap <= 0:
            raise ValueError(f"max_gap must be positive, got {max_gap}")
        begin, end = max(0, z - max_gap), min(len(visible), z + max_gap + 1)
    window = visible[begin:end].copy()
    window[z - begin] = False
    search = np.flatnonzero(window) + begin
    if len(search) == 0:
        return z, z
    return z, int(rng.choice(search))


class SequenceSource:
    """Anything that can hand out sequences at random: ``name``, ``pick(rng, sample_count)``."""

    name: str = "source"

    def pick(self, rng: np.random.Generator, sample_count: int) -> TrackingSequence:
        """A random sequence. ``sample_count`` is the caller's running sample counter (streaming
        sources use it to decide which rows are loaded; random-access sources ignore it)."""
        raise NotImplementedError


@dataclass
class SampledPair:
    """A sampled pair ready for :class:`~training.data.transform.PairTransform`, plus an id for logs."""

    pair: FramePair
    source_index: int
    key: str


def _frame_loader(seq: TrackingSequence, index: int):
    return lambda: seq.load_frame(index)


class PairSampler:
    """Weighted mixture of sources -> :class:`SampledPair` (see the module docstring for the rules)."""

    def __init__(
        self,
        sources: Sequence[SequenceSource],
        weights: Sequence[float] | None = None,
        max_gap: int | None = OFFICIAL_MAX_GAP,
        negative_ratio: float = 0.0,
    ) -> None:
        if not sources:
            raise ValueError("PairSampler needs at least one source")
        weights = np.ones(len(sources)) if weights is None else np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(sources),):
            raise ValueError(f"got {weights.size} dataset weights for {len(sources)} datasets")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(
                f"dataset weights must be non-negative with a positive sum, got {weights.tolist()}"
            )
        if not 0.0 <= negative_ratio < 1.0:
            raise ValueError(f"negative_ratio must be in [0, 1), got {negative_ratio}")
        self.sources = list(sources)
        self.probabilities = weights / weights.sum()
        self.max_gap = max_gap
        self.negative_ratio = negative_ratio

    def _choose_source(self, rng: np.random.Generator) -> int:
        if len(self.sources) == 1:
            return 0
        return int(rng.choice(len(self.sources), p=self.probabilities))

    def __call__(self, rng: np.random.Generator, sample_count: int = 0) -> SampledPair:
        """Draw one pair. Raises :class:`BadSampleError` for sequences that cannot give a pair."""
        source_index = self._choose_source(rng)
        source = self.sources[source_index]
        seq = source.pick(rng, sample_count)
        visible = seq.valid()
        positive = self.negative_ratio == 0 or rng.random() >= self.negative_ratio
        if positive:
            z, x = sample_frame_indices(visible, self.max_gap, rng)
            search_seq = seq
        else:
            z, _ = sample_frame_indices(visible, None, rng)
            search_index = self._choose_source(rng)
            search_seq = self.sources[search_index].pick(rng, sample_count)
            x, _ = sample_frame_indices(search_seq.valid(), None, rng)
        pair = FramePair(
            template_frame=_frame_loader(seq, z),
            template_box=seq.boxes[z],
            search_frame=_frame_loader(search_seq, x),
            search_box=search_seq.boxes[x],
            is_positive=positive,
            same_image=search_seq is seq and x == z,
        )
        key = f"{source.name}/{seq.name}#{z}"
        key += f"-{x}" if positive else f"|neg:{search_seq.name}#{x}"
        return SampledPair(pair, source_index, key)
