"""Synthetic tracking data: determinism, exact boxes, benchmark folder, streaming dataset."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from datasets.distributed import split_dataset_by_node

from modeling_lorat.data import (
    get_dataset,
    make_synthetic_sequence,
    row_to_sequence,
    sequence_to_row,
    synthetic_iterable_dataset,
    synthetic_sequences,
    write_synthetic_benchmark,
)

SMALL = {"num_frames": 6, "frame_size": (64, 48)}


def frames_of(seq) -> np.ndarray:
    return np.stack([seq.load_frame(i) for i in range(len(seq))])


def test_same_seed_bit_identical_different_seed_differs():
    a, b, c = (make_synthetic_sequence(s, **SMALL) for s in (5, 5, 6))
    fa = frames_of(a)
    assert fa.shape == (6, 48, 64, 3) and fa.dtype == np.uint8
    np.testing.assert_array_equal(fa, frames_of(b))
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not np.array_equal(fa, frames_of(c)) and not np.array_equal(a.boxes, c.boxes)
    # rendering order does not matter, frames differ over time, refs survive pickling
    np.testing.assert_array_equal(a.load_frame(3), make_synthetic_sequence(5, **SMALL).load_frame(3))
    assert not np.array_equal(fa[0], fa[-1])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a.frames[2]))(), fa[2])


def test_default_size_boxes_inside_frame_and_moving_smoothly():
    seq = make_synthetic_sequence(11)
    assert len(seq) == 60 and seq.load_frame(0).shape == (120, 160, 3)
    x, y, w, h = seq.boxes.T
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= 160).all() and (y + h <= 120).all()
    assert ((w >= 8) & (w <= 48) & (h >= 8) & (h <= 48)).all()
    assert np.array_equal(seq.boxes, np.round(seq.boxes)) and seq.valid().all()
    centers = seq.boxes[:, :2] + seq.boxes[:, 2:] / 2
    steps = np.abs(np.diff(centers, axis=0))
    assert steps.max() <= 6 and np.linalg.norm(centers[-1] - centers[0]) > 5


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_box_covers_exactly_the_target_pixels(seed):
    seq = make_synthetic_sequence(seed, num_frames=20)
    colors = np.asarray(seq.attributes["target_colors"])
    for index in (0, 19):
        frame = seq.load_frame(index).astype(int)
        close = np.zeros(frame.shape[:2], dtype=bool)
        for color in colors:
            close |= np.abs(frame - color).max(axis=-1) <= 4
        x, y, w, h = seq.boxes[index].astype(int)
        inside = np.zeros_like(close)
        inside[y : y + h, x : x + w] = True
        assert close[inside].mean() > 0.6  # ellipses leave the box corners to the background
        assert close[~inside].mean() < 0.005
        ys, xs = np.nonzero(close & inside)
        assert (xs.min(), xs.max(), ys.min(), ys.max()) == (x, x + w - 1, y, y + h - 1)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="frame_size"):
        make_synthetic_sequence(0, frame_size=(8, 8))
    with pytest.raises(ValueError, match="num_frames"):
        make_synthetic_sequence(0, num_frames=0)


def test_benchmark_folder_round_trip_and_reuse(tmp_path):
    root = write_synthetic_benchmark(tmp_path / "synth", num_sequences=2, seed=3, num_frames=4)
    expected = synthetic_sequences(2, seed=3, num_frames=4)
    seqs = get_dataset("synthetic", root)
    assert [s.name for s in seqs] == ["synth_3_0000", "synth_3_0001"] == [s.name for s in expected]
    for seq, ref in zip(seqs, expected):
        assert seq.dataset == "synthetic" and len(seq) == 4
        np.testing.assert_array_equal(seq.boxes, ref.boxes)
        error = np.abs(seq.load_frame(1).astype(int) - ref.load_frame(1).astype(int)).mean()
        assert error < 4  # JPEG quality 95
    assert not list(root.rglob(".tmp*"))

    first = root / "synth_3_0000" / "00000001.jpg"
    stamp = first.stat().st_mtime_ns
    (root / "synth_3_0001" / "00000004.jpg").unlink()  # incomplete sequence gets rewritten
    write_synthetic_benchmark(root, num_sequences=2, seed=3, num_frames=4)
    assert first.stat().st_mtime_ns == stamp
    assert (root / "synth_3_0001" / "00000004.jpg").is_file()
    with pytest.raises(FileNotFoundError, match="write_synthetic_benchmark"):
        get_dataset("synthetic", tmp_path / "missing")


def test_row_round_trip_regenerates_frames():
    seq = make_synthetic_sequence(9, **SMALL)
    row = sequence_to_row(seq, embed_frames=False)
    assert row["frames"] == [] and row["frame_paths"] == []
    back = row_to_sequence(row)
    np.testing.assert_array_equal(frames_of(back), frames_of(seq))
    np.testing.assert_array_equal(back.boxes, seq.boxes)


def test_iterable_dataset_shards_split_by_node():
    dataset = synthetic_iterable_dataset(seed=1, num_sequences=8, num_shards=4, **SMALL)
    assert dataset.num_shards == 4
    ranks = [[row["name"] for row in split_dataset_by_node(dataset, rank, 2)] for rank in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 4 and not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == [f"synth_1_{i:06d}" for i in range(8)]
    row = next(iter(split_dataset_by_node(dataset, 1, 2)))
    seq = row_to_sequence(row)
    assert seq.load_frame(0).shape == (48, 64, 3) and seq.boxes.shape == (6, 4)
    endless = synthetic_iterable_dataset(seed=1, num_shards=2, **SMALL)
    names = [row["name"] for _, row in zip(range(10), endless)]
    assert len(set(names)) == 10
