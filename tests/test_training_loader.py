"""The training stream: determinism, resume position, workers, sharding, bad samples, parquet streaming."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_lorat.data import (  # noqa: E402
    TrackingSequence,
    make_synthetic_sequence,
    synthetic_iterable_dataset,
    write_parquet_shards,
)
from modeling_lorat.testing_utils import tiny_config  # noqa: E402
from training.data import (  # noqa: E402
    ListSource,
    PairAugmentation,
    PairSampler,
    PairTransform,
    StreamLayout,
    SyntheticSource,
    TrainingPairDataset,
    TransformConfig,
    build_source,
    make_dataloader,
    parse_dataset_spec,
)

TRANSFORM = PairTransform(TransformConfig.from_model_config(tiny_config()), augmentation=PairAugmentation())
SMALL = {"num_frames": 8, "frame_size": (64, 48)}


def _batches(sources, num_batches=3, workers=0, **layout):
    layout = StreamLayout(**{"seed": 0, "batch_size": 2, **layout})
    dataset = TrainingPairDataset(PairSampler(sources), TRANSFORM, layout, num_batches=num_batches)
    return list(make_dataloader(dataset, workers))


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x["sample_keys"] == y["sample_keys"]
        for name in ("pixel_values_template", "pixel_values_search", "template_mask", "labels"):
            assert torch.equal(x[name], y[name]), name


def test_collated_batch_has_model_inputs():
    (batch,) = _batches([SyntheticSource(0, 50, **SMALL)], num_batches=1)
    assert batch["pixel_values_template"].shape == (2, 3, 28, 28)
    assert batch["pixel_values_search"].shape == (2, 3, 56, 56)
    assert batch["template_mask"].shape == (2, 2, 2) and batch["template_mask"].dtype == torch.long
    assert batch["labels"].shape == (2, 4) and torch.isfinite(batch["labels"]).all()
    assert batch["sample_index"].tolist() == [0, 1] and len(batch["sample_keys"]) == 2


def test_stream_is_a_function_of_position_not_of_history_or_workers():
    source = SyntheticSource(0, 50, **SMALL)
    full = _batches([source], num_batches=4)
    _assert_same(full, _batches([SyntheticSource(0, 50, **SMALL)], num_batches=4))
    _assert_same(full[2:], _batches([source], num_batches=2, start_batch=2))  # resume = start position
    _assert_same(full, _batches([source], num_batches=4, workers=2))  # same order with worker processes


def test_processes_draw_disjoint_sample_indices():
    source = SyntheticSource(0, 50, **SMALL)
    seen = [
        {i for b in _batches([source], num_processes=2, process_index=r) for i in b["sample_index"].tolist()}
        for r in (0, 1)
    ]
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(range(12))


def _broken_sequence(tmp_path) -> TrackingSequence:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    return TrackingSequence("broken", [bad, tmp_path / "missing.jpg"], np.tile([5.0, 5, 20, 20], (2, 1)))


def test_bad_samples_are_skipped_and_counted(tmp_path):
    invisible = TrackingSequence("gone", [lambda: None] * 3, np.full((3, 4), np.nan))
    empty = TrackingSequence("flat", [lambda: np.zeros((20, 20, 3), np.uint8)], [[2.0, 2.0, 0.0, 5.0]])
    bad = ListSource("bad", [_broken_sequence(tmp_path), invisible, empty])
    good = ListSource("good", [make_synthetic_sequence(1, **SMALL)])
    dataset = TrainingPairDataset(
        PairSampler([bad, good], weights=[3, 1]), TRANSFORM, StreamLayout(seed=0, batch_size=4), num_batches=3
    )
    batches = list(make_dataloader(dataset))
    assert all(key.startswith("good/") for b in batches for key in b["sample_keys"])
    skipped = {}
    for b in batches:
        for reason, count in b["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + count
    assert skipped.get("broken_image", 0) > 0 and skipped.get("no_visible_frame", 0) > 0
    assert sum(skipped.values()) >= 12  # weight 3:1 -> most first draws are bad


def test_only_bad_data_raises_one_clear_error(tmp_path):
    dataset = TrainingPairDataset(
        PairSampler([ListSource("bad", [_broken_sequence(tmp_path)])]),
        TRANSFORM,
        StreamLayout(seed=0, batch_size=1),
        max_attempts=5,
    )
    with pytest.raises(RuntimeError, match="no usable training pair after 5 attempts.*broken_image"):
        next(iter(dataset))


def test_parquet_source_is_streamed_and_split_between_processes(tmp_path):
    seqs = [make_synthetic_sequence(i, name=f"seq{i}", **SMALL) for i in range(2)]
    write_parquet_shards(seqs, tmp_path)
    spec = parse_dataset_spec(f"parquet:{tmp_path}")
    names = []
    for rank in (0, 1):
        batches = _batches([build_source(spec, seed=0)], num_batches=3, num_processes=2, process_index=rank)
        names.append({key.split("/")[-1].split("#")[0] for b in batches for key in b["sample_keys"]})
    assert names[0] | names[1] == {"seq0", "seq1"} and names[0].isdisjoint(names[1])


def test_streamed_pool_resumes_at_the_same_rows():
    spec = parse_dataset_spec("synthetic_stream:64")
    full = _batches([build_source(spec, seed=0, pool_size=4, refresh_every=2)], num_batches=6)
    resumed = _batches(
        [build_source(spec, seed=0, pool_size=4, refresh_every=2)], num_batches=2, start_batch=4
    )
    _assert_same(full[4:], resumed)
    first_rows = {row["name"] for _, row in zip(range(4), synthetic_iterable_dataset(0, num_sequences=64))}
    seen = {k.split("/")[-1].split("#")[0] for b in full for k in b["sample_keys"]}
    assert seen - first_rows  # rows beyond the initial pool were streamed in
