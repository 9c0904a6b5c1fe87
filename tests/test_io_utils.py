"""`io_utils`: the package's one atomic writer, natural-sort key and number-table parser, and the readers
and writers built on them (ground truth, result files, synthetic benchmark)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from modeling_lorat import io_utils, video_io
from modeling_lorat.data import readers_common
from modeling_lorat.data.synthetic import write_synthetic_benchmark
from modeling_lorat.evaluation import results_io
from modeling_lorat.io_utils import (
    atomic_write_text,
    is_atomic_temp_name,
    natural_sort_key,
    read_number_rows,
    read_result_boxes,
)


def test_one_implementation_behind_every_name():
    assert readers_common.natural_key is natural_sort_key is video_io.natural_sort_key
    assert results_io.atomic_write_text is atomic_write_text and results_io.read_boxes is read_result_boxes
    assert sorted(["f10.jpg", "F2.jpg", "f1.jpg"], key=natural_sort_key) == ["f1.jpg", "F2.jpg", "f10.jpg"]


def test_atomic_write_replaces_whole_or_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "boxes.txt"
    atomic_write_text(path, "old\n")
    assert path.read_text() == "old\n" and oct(path.stat().st_mode & 0o777) == "0o644"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io_utils.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new\n", fsync=False)
    monkeypatch.undo()
    assert path.read_text() == "old\n" and sorted(os.listdir(path.parent)) == ["boxes.txt"]
    assert is_atomic_temp_name(".boxes.txt.ab12_x9z.tmp") and not is_atomic_temp_name("boxes.tmp")


def test_synthetic_benchmark_is_written_through_the_atomic_writer(tmp_path):
    root = write_synthetic_benchmark(tmp_path / "synth", 1, seed=2, num_frames=3, frame_size=(40, 30))
    files = sorted(p.name for p in (root / "synth_2_0000").iterdir())
    assert files == ["00000001.jpg", "00000002.jpg", "00000003.jpg", "groundtruth.txt"]
    assert not [p for p in root.rglob("*") if p.name.startswith(".")]  # no temp files left
    assert readers_common.read_boxes(root / "synth_2_0000" / "groundtruth.txt").shape == (3, 4)


def test_number_rows_separators_bom_and_errors(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeff1;2 3,4\n5\t6 , 7 8\n\n\n".encode())
    assert read_number_rows(path, 4) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert read_number_rows(path) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    cases = [
        ("1,2,3,4\n\n1,2,3,4\n", rf"^seq: {path}, line 2: blank line$"),
        ("1,2,3\n", rf"^seq: {path}, line 1: expected 4 values \(x,y,w,h\), got 3: '1,2,3'$"),
        ("1,2,x,4\n", rf"^seq: {path}, line 1: non-numeric value in '1,2,x,4'$"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_number_rows(path, 4, label="seq")
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="is not a text file"):
        read_number_rows(path, 4)


def test_ground_truth_and_result_files_differ_only_in_their_nan_rule(tmp_path):
    path = tmp_path / "boxes.txt"
    path.write_text("1,2,3,4\n1,nan,3,4\n")
    ground_truth = readers_common.read_boxes(path)
    results = read_result_boxes(path, num_frames=2)
    assert np.isnan(ground_truth[1]).all()  # a partly unknown ground-truth box is unknown
    assert np.isnan(results[1]).tolist() == [False, True, False, False]  # results are scored as written
    path.write_text("NaN\n")
    assert np.isnan(readers_common.read_boxes(path)).all()
    with pytest.raises(ValueError, match="expected 4 values"):
        read_result_boxes(path)
    with pytest.raises(
        ValueError, match=r"^boxes: result file .* has 1 lines, expected 3 \(one per frame\)$"
    ):
        path.write_text("1,2,3,4\n")
        read_result_boxes(path, num_frames=3)
    with pytest.raises(FileNotFoundError, match="^s: result file not found"):
        read_result_boxes(tmp_path / "missing.txt", name="s")
