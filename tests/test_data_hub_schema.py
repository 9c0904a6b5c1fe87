"""Parquet / Hub schema: row conversion, shard writing, streaming round trip, prepare_dataset CLI."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from datasets import IterableDataset
from datasets.distributed import split_dataset_by_node
from huggingface_hub import DatasetCard
from PIL import Image

from modeling_lorat.data import (
    TrackingSequence,
    get_dataset,
    iter_sequences,
    load_sequences,
    row_to_sequence,
    sequence_to_row,
    write_parquet_shards,
)

ROOT = Path(__file__).resolve().parents[1]


def make_got10k_val(root: Path, num_sequences: int = 2, n: int = 4) -> list[str]:
    """GOT-10k val fixture with random-noise JPEG frames and a NaN ground-truth row."""
    rng = np.random.default_rng(0)
    names = [f"GOT-10k_Val_{k + 1:06d}" for k in range(num_sequences)]
    folder = root / "val"
    for k, name in enumerate(names):
        (folder / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i + 1:08d}.jpg", quality=90)
        lines = [f"{k + i},{i},{10 + i}.5,8" for i in range(n)]
        lines[1] = "nan,nan,nan,nan"
        (folder / name / "groundtruth.txt").write_text("\n".join(lines) + "\n")
        (folder / name / "absence.label").write_text("0\n1\n" + "0\n" * (n - 2))
    (folder / "list.txt").write_text("\n".join(names) + "\n")
    return names


def assert_same_sequence(a: TrackingSequence, b: TrackingSequence) -> None:
    assert a.name == b.name and a.dataset == b.dataset and len(a) == len(b)
    np.testing.assert_array_equal(a.boxes, b.boxes)  # NaN rows compare equal
    np.testing.assert_array_equal(a.absent, b.absent)
    for i in range(len(a)):
        np.testing.assert_array_equal(a.load_frame(i), b.load_frame(i))


def test_row_round_trip_in_memory_frames_is_lossless():
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8) for _ in range(3)]
    seq = TrackingSequence(
        "mem", [lambda f=f: f for f in frames], [[1, 2, 3, 4]] * 3, [False, True, False],
        dataset="toy", attributes={"class": "cup", "n": np.int64(3)},
    )  # fmt: skip
    row = sequence_to_row(seq)
    assert set(row) == {"name", "dataset", "frames", "frame_paths", "boxes", "absent", "attributes"}
    assert row["frame_paths"] == [] and all(isinstance(b, bytes) for b in row["frames"])
    back = row_to_sequence(row)
    assert_same_sequence(seq, back)
    assert back.attributes == {"class": "cup", "n": 3}
    assert pickle.loads(pickle.dumps(back.frames[0]))().shape == (24, 32, 3)  # DataLoader workers
    with pytest.raises(ValueError, match="'mem': frame_paths mode needs path frames"):
        sequence_to_row(seq, embed_frames=False)
    with pytest.raises(ValueError, match="'x' has neither frames"):
        row_to_sequence({"name": "x", "boxes": [[1, 2, 3, 4]], "frames": [], "frame_paths": []})


def test_parquet_shards_stream_back_bit_exact(tmp_path):
    make_got10k_val(tmp_path / "got", num_sequences=3)
    sequences = get_dataset("got10k", tmp_path / "got", "val")
    shards = write_parquet_shards(sequences, tmp_path / "out", max_rows_per_shard=2)
    assert [p.name for p in shards] == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    assert not list((tmp_path / "out" / "data").glob(".tmp*"))  # temp files renamed away
    assert pq.read_table(shards[0]).num_rows == 2

    dataset = load_sequences(tmp_path / "out", split="train", streaming=True)
    assert isinstance(dataset, IterableDataset) and dataset.num_shards == 2
    back = list(iter_sequences(dataset))
    assert len(back) == 3
    for original, restored in zip(sequences, back):
        assert_same_sequence(original, restored)  # JPEG bytes embedded as-is => identical pixels
    assert np.isnan(back[0].boxes[1]).all() and back[0].absent.tolist() == [False, True, False, False]
    assert [s.name for s in get_dataset("parquet", str(tmp_path / "out"))] == [s.name for s in sequences]
    with pytest.raises(ValueError, match="no sequences to write"):
        write_parquet_shards([], tmp_path / "out")
    assert len(list((tmp_path / "out" / "data").glob("*.parquet"))) == 2  # failed write keeps old shards


def test_rewrite_removes_stale_shards_and_paths_mode(tmp_path):
    make_got10k_val(tmp_path / "got", num_sequences=3)
    sequences = get_dataset("got10k", tmp_path / "got", "val")
    write_parquet_shards(sequences, tmp_path / "out", max_rows_per_shard=1)
    shards = write_parquet_shards(sequences, tmp_path / "out", max_rows_per_shard=5, embed_frames=False)
    assert sorted(p.name for p in (tmp_path / "out" / "data").glob("*.parquet")) == [
        "train-00000-of-00001.parquet"
    ]
    row = pq.read_table(shards[0]).to_pylist()[0]
    assert row["frames"] == [] and len(row["frame_paths"]) == 4
    assert_same_sequence(sequences[0], row_to_sequence(row))
    with pytest.raises(ValueError, match="split name"):
        write_parquet_shards(sequences, tmp_path / "out", split="a/b")


def test_split_dataset_by_node_gives_disjoint_shards(tmp_path):
    make_got10k_val(tmp_path / "got", num_sequences=4, n=2)
    write_parquet_shards(
        get_dataset("got10k", tmp_path / "got", "val"), tmp_path / "out", max_rows_per_shard=1
    )
    dataset = load_sequences(tmp_path / "out")
    ranks = [[row["name"] for row in split_dataset_by_node(dataset, rank, 2)] for rank in range(2)]
    assert ranks[0] and ranks[1] and not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == [f"GOT-10k_Val_{k:06d}" for k in range(1, 5)]


def test_load_sequences_missing_local_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no 'val-\\*.parquet' shards"):
        load_sequences(tmp_path, split="val")
    with pytest.raises(FileNotFoundError, match="dataset path not found"):
        load_sequences(tmp_path / "missing")


def load_prepare_dataset():
    spec = importlib.util.spec_from_file_location("prepare_dataset", ROOT / "training" / "prepare_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_dataset_cli_writes_shards_and_card(tmp_path, capsys):
    prepare = load_prepare_dataset()
    make_got10k_val(tmp_path / "got", num_sequences=3, n=2)
    out = tmp_path / "out"
    args = ["--dataset", "got10k", "--root", str(tmp_path / "got"), "--output", str(out)]
    assert prepare.main([*args, "--split", "val", "--max-rows-per-shard", "2"]) == 0
    assert "3 sequences in 2 shard(s)" in capsys.readouterr().out
    assert len(list((out / "data").glob("val-*-of-00002.parquet"))) == 2
    assert prepare.main([*args, "--split", "val", "--hub-split", "train", "--frame-mode", "paths"]) == 0

    card = DatasetCard.load(out / "README.md")
    meta = card.data.to_dict()
    assert meta["license"] == "other" and "object-detection" in meta["task_categories"]
    assert "video" in meta["tags"]
    files = meta["configs"][0]["data_files"]
    assert files == [
        {"split": "val", "path": "data/val-*.parquet"},
        {"split": "train", "path": "data/train-*.parquet"},
    ]
    assert "list<binary>" in card.text and "`x, y, w, h`" in card.text
    val = list(iter_sequences(load_sequences(out, split="val")))
    assert len(val) == 3 and val[0].load_frame(0).shape == (24, 32, 3)
    with pytest.raises(ValueError, match="--push_to_hub needs --frame-mode embed"):
        prepare.main([*args, "--frame-mode", "paths", "--push_to_hub", "user/repo"])
