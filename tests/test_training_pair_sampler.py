"""Training-pair sampling rules: frame gap, invisible frames, source weights, COCO-style images."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_lorat.data import TrackingSequence  # noqa: E402
from training.data import (  # noqa: E402
    BadSampleError,
    ListSource,
    PairSampler,
    parse_dataset_spec,
    sample_frame_indices,
)


def _sequence(name: str, n: int, absent=(), nan=(), empty=()) -> TrackingSequence:
    boxes = np.tile([10.0, 10.0, 20.0, 20.0], (n, 1))
    boxes[list(nan)] = np.nan
    boxes[list(empty), 2] = 0.0
    flags = np.zeros(n, dtype=bool)
    flags[list(absent)] = True
    frames = [lambda: np.zeros((8, 8, 3), np.uint8)] * n
    return TrackingSequence(name, frames, boxes, flags, dataset="toy")


def test_search_frame_within_max_gap_and_never_the_template_when_avoidable():
    rng = np.random.default_rng(0)
    visible = np.ones(1000, dtype=bool)
    gaps = []
    for _ in range(2000):
        z, x = sample_frame_indices(visible, 100, rng)
        gaps.append(x - z)
    gaps = np.array(gaps)
    assert np.abs(gaps).max() <= 100
    assert (gaps != 0).all()
    assert gaps.min() < -80 and gaps.max() > 80  # the whole window is used, both directions


def test_invisible_frames_are_never_sampled():
    seq = _sequence("s", 300, absent=range(0, 300, 2), nan=[1, 3], empty=[5])
    visible = seq.valid()
    assert not visible[[0, 1, 3, 5]].any()
    rng = np.random.default_rng(1)
    for _ in range(1000):
        z, x = sample_frame_indices(visible, 100, rng)
        assert visible[z] and visible[x]


def test_no_candidate_in_window_gives_same_frame_and_no_visible_frame_is_bad():
    visible = np.zeros(500, dtype=bool)
    visible[[10, 400]] = True  # 390 frames apart: > max_gap
    rng = np.random.default_rng(2)
    for _ in range(20):
        z, x = sample_frame_indices(visible, 100, rng)
        assert z == x and z in (10, 400)
    with pytest.raises(BadSampleError) as info:
        sample_frame_indices(np.zeros(5, dtype=bool), 100, rng)
    assert info.value.reason == "no_visible_frame"


def test_one_frame_sequences_pair_the_image_with_itself():
    image = _sequence("coco_obj", 1)
    sampler = PairSampler([ListSource("coco", [image])])
    sampled = sampler(np.random.default_rng(3))
    assert sampled.pair.same_image and sampled.pair.is_positive
    assert sampled.key == "coco/coco_obj#0-0"
    np.testing.assert_array_equal(sampled.pair.template_box, sampled.pair.search_box)


def test_dataset_weights_are_respected_statistically():
    sources = [ListSource(name, [_sequence(name, 5)]) for name in ("a", "b", "c")]
    sampler = PairSampler(sources, weights=[1.0, 2.0, 5.0])
    rng = np.random.default_rng(4)
    counts = Counter(sampler(rng).source_index for _ in range(4000))
    freq = np.array([counts[i] for i in range(3)]) / 4000
    np.testing.assert_allclose(freq, [1 / 8, 2 / 8, 5 / 8], atol=0.03)


def test_zero_weight_source_is_never_used_and_bad_weights_raise():
    sources = [ListSource(name, [_sequence(name, 5)]) for name in ("a", "b")]
    rng = np.random.default_rng(5)
    sampler = PairSampler(sources, weights=[0.0, 1.0])
    assert {sampler(rng).source_index for _ in range(200)} == {1}
    with pytest.raises(ValueError, match="weights"):
        PairSampler(sources, weights=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        PairSampler(sources, weights=[-1.0, 1.0])


def test_negative_pairs_use_another_sequence():
    sources = [ListSource("a", [_sequence("a1", 5), _sequence("a2", 5)])]
    sampler = PairSampler(sources, negative_ratio=0.5)
    rng = np.random.default_rng(6)
    pairs = [sampler(rng) for _ in range(400)]
    negatives = [p for p in pairs if not p.pair.is_positive]
    assert 150 < len(negatives) < 250
    assert all("|neg:" in p.key for p in negatives)


def test_dataset_spec_errors_are_clear(tmp_path):
    assert parse_dataset_spec("synthetic").name == "synthetic"
    assert parse_dataset_spec(f"got10k@val:{tmp_path}").split == "val"
    assert parse_dataset_spec(f"lasot:{tmp_path}").split == "train"
    with pytest.raises(ValueError, match="unknown dataset"):
        parse_dataset_spec("imagenet:/data")
    with pytest.raises(ValueError, match="needs a root"):
        parse_dataset_spec("got10k")
    with pytest.raises(FileNotFoundError, match="root not found"):
        parse_dataset_spec(f"coco:{tmp_path / 'missing'}")
    assert parse_dataset_spec("parquet:user/tracking-data").root == "user/tracking-data"  # a Hub repo id
