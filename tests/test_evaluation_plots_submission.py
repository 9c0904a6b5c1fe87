"""Comparison plots, per-attribute breakdown, submission zips and the plot / package-submission CLI."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from modeling_lorat.cli import main as cli_main
from modeling_lorat.data.sequence import TrackingSequence
from modeling_lorat.evaluation.plots import (
    attribute_scores,
    compare_result_dirs,
    legend_entries,
    sequence_attribute_flags,
)
from modeling_lorat.evaluation.results_io import result_file_offset, write_sequence_results
from modeling_lorat.evaluation.submission import (
    package_got10k_submission,
    package_trackingnet_submission,
    rasterize_boxes_xywh,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_sequences(num: int = 4, num_frames: int = 8, dataset: str = "lasot") -> list[TrackingSequence]:
    sequences = []
    for i in range(num):
        boxes = np.array([[20.0 + 2 * f, 30.0, 20.0, 16.0] for f in range(num_frames)])
        flags = {"IV": i % 2 == 0, "FM": i < 2, "LR": False}
        sequences.append(
            TrackingSequence(
                f"s{i}", [None] * num_frames, boxes, dataset=dataset, attributes={"attribute_flags": flags}
            )
        )
    return sequences


def write_run(run_dir, sequences, shift: float, layout: str = "ope") -> None:
    """Result files as the runner writes them (LaSOT files in the toolkit's 1-based convention)."""
    for seq in sequences:
        boxes = seq.boxes.copy()
        boxes[1:, 0] += shift
        offset = result_file_offset(seq.dataset)
        write_sequence_results(
            run_dir / "results", seq.name, boxes, np.full(len(seq), 0.02), layout=layout, offset=offset
        )


def test_legend_sorted_by_score():
    assert legend_entries({"a": 0.512, "b": 0.7, "c": 0.6}) == [
        ("b", "b [70.0]"),
        ("c", "c [60.0]"),
        ("a", "a [51.2]"),
    ]


def test_compare_result_dirs_draws_plots_and_attributes(tmp_path):
    sequences = make_sequences()
    write_run(tmp_path / "good", sequences, shift=1.0)
    write_run(tmp_path / "bad", sequences, shift=12.0)
    out = compare_result_dirs(
        [tmp_path / "bad", tmp_path / "good" / "results"], sequences, "lasot", tmp_path / "plots"
    )
    results = out["results"]
    assert list(results) == ["bad", "good"]
    assert results["good"]["metrics"]["success_auc"] > results["bad"]["metrics"]["success_auc"]
    names = sorted(p.name for p in out["plots"])
    assert names == ["norm_precision_plot.png", "precision_plot.png", "success_plot.png"]
    for path in [*out["plots"], out["attributes"]]:
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000
    table = json.loads((tmp_path / "plots" / "attributes.json").read_text())
    per_seq = results["good"]["per_sequence"]
    expected_iv = np.mean([per_seq[n]["success_auc"] for n in ("s0", "s2")])
    assert table["good"]["IV"] == {"score": pytest.approx(expected_iv), "num_sequences": 2}
    assert "LR" not in table["good"]  # no sequence has it


def test_attribute_flags_sources():
    seq = make_sequences(1)[0]
    assert sequence_attribute_flags(seq) == {"IV": True, "FM": True, "LR": False}
    seq.attributes = {"class": "cat", "IV": 1, "FM": 0, "language": "a cat"}
    assert sequence_attribute_flags(seq) == {"IV": True, "FM": False}
    seq.attributes = {"class": "cat"}
    assert sequence_attribute_flags(seq) == {}
    assert attribute_scores([seq], {"s0": {"success_auc": 0.5}}) == {}


def test_got10k_plot_uses_ao(tmp_path):
    sequences = make_sequences(2)
    for seq in sequences:
        seq.attributes = {"resolution": (200, 100)}
    write_run(tmp_path / "run", sequences, shift=2.0, layout="got10k")
    out = compare_result_dirs([tmp_path / "run"], sequences, "got10k", tmp_path / "plots")
    assert [p.name for p in out["plots"]] == ["success_plot.png"] and out["attributes"] is None
    assert set(out["results"]["run"]["metrics"]) == {"ao", "sr50", "sr75"}


def test_got10k_submission_zip(tmp_path):
    sequences = make_sequences(3, num_frames=5, dataset="got10k")
    write_run(tmp_path / "run", sequences, shift=0.5, layout="ope")  # converted to GOT-10k layout
    zip_path = package_got10k_submission(tmp_path / "run", tmp_path / "out" / "sub.zip", sequences)
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(
            [f"s{i}/" for i in range(3)]
            + [f"s{i}/s{i}_001.txt" for i in range(3)]
            + [f"s{i}/s{i}_time.txt" for i in range(3)]
        )
        lines = archive.read("s1/s1_001.txt").decode().splitlines()
        assert len(lines) == 5 and lines[0] == "20.000,30.000,20.000,16.000"  # the got10k toolkit's %.3f
        assert len(archive.read("s1/s1_time.txt").decode().split()) == 5
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["sub.zip"]  # no temp file left


def test_submission_boxes_are_rasterised_like_the_official_ones(tmp_path):
    """Official LoRAT GOT-10k/TrackingNet handlers: bbox_rasterize (floor x1,y1; floor(x2 + 1 - 1e-4))."""
    # ends exactly on / 5e-5 past / 2e-4 past a whole pixel; a sliver of a box keeps one pixel
    boxes = np.array(
        [[10.3, 20.7, 5.2, 4.1], [0.0, 0.0, 3.0, 3.00005], [1.0, 1.0, 2.0, 2.0002], [7.99999, 1.5, 1e-5, 2.0]]
    )
    want = [[10, 20, 6, 5], [0, 0, 3, 3], [1, 1, 2, 3], [7, 1, 1, 3]]
    np.testing.assert_array_equal(rasterize_boxes_xywh(boxes), want)
    with pytest.raises(ValueError, match="s9: result boxes contain NaN"):
        rasterize_boxes_xywh(np.array([[1.0, np.nan, 2.0, 2.0]]), "s9")
    seq = TrackingSequence("s0", [None] * 4, boxes, dataset="trackingnet")
    write_sequence_results(tmp_path / "r", "s0", boxes, np.full(4, 0.01))
    for rasterize, first_tn, first_got in (
        (True, "10.00,20.00,6.00,5.00", "10.000,20.000,6.000,5.000"),
        (False, "10.30,20.70,5.20,4.10", "10.300,20.700,5.200,4.100"),
    ):
        package_trackingnet_submission(tmp_path / "r", tmp_path / "t.zip", [seq], rasterize=rasterize)
        package_got10k_submission(tmp_path / "r", tmp_path / "g.zip", [seq], rasterize=rasterize)
        with zipfile.ZipFile(tmp_path / "t.zip") as t, zipfile.ZipFile(tmp_path / "g.zip") as g:
            assert t.read("s0.txt").decode().splitlines()[0] == first_tn
            assert g.read("s0/s0_001.txt").decode().splitlines()[0] == first_got


def test_submission_errors_name_the_sequence(tmp_path):
    sequences = make_sequences(2, num_frames=5)
    write_sequence_results(tmp_path / "r", "s0", sequences[0].boxes)  # no time file
    with pytest.raises(FileNotFoundError, match="s0: time file not found: .*s0_time.txt"):
        package_got10k_submission(tmp_path / "r", tmp_path / "a.zip")
    (tmp_path / "r" / "s0_time.txt").write_text("0.01\n" * 4)
    with pytest.raises(ValueError, match="s0: time file .*s0_time.txt has 4 lines, expected 5"):
        package_got10k_submission(tmp_path / "r", tmp_path / "a.zip")
    with pytest.raises(FileNotFoundError, match="s1: no result file"):
        package_trackingnet_submission(tmp_path / "r", tmp_path / "b.zip", sequences)
    (tmp_path / "r" / "s0.txt").write_text("1,2,3,4\n" * 4)
    with pytest.raises(ValueError, match="s0: result file .* has 4 lines, expected 5"):
        package_trackingnet_submission(tmp_path / "r", tmp_path / "b.zip", sequences[:1])
    assert not (tmp_path / "a.zip").exists() and not (tmp_path / "b.zip").exists()


def test_trackingnet_zip_via_cli(tmp_path, capsys):
    sequences = make_sequences(2, num_frames=4, dataset="trackingnet")
    write_run(tmp_path / "run", sequences, shift=0.0, layout="got10k")  # converted to flat files
    (tmp_path / "t.zip").write_bytes(b"old")  # replaced atomically
    code = cli_main(
        [
            "package-submission",
            "--dataset",
            "trackingnet",
            "--results",
            str(tmp_path / "run"),
            "--output",
            str(tmp_path / "t.zip"),
        ]
    )
    assert code == 0 and "wrote" in capsys.readouterr().out
    with zipfile.ZipFile(tmp_path / "t.zip") as archive:
        assert sorted(archive.namelist()) == ["s0.txt", "s1.txt"]
        assert archive.read("s0.txt").decode().splitlines()[1] == "22.00,30.00,20.00,16.00"


def test_plot_cli_on_synthetic_benchmark(tmp_path, capsys):
    from modeling_lorat.data import get_dataset
    from modeling_lorat.data.synthetic import write_synthetic_benchmark

    root = write_synthetic_benchmark(tmp_path / "synth", 2, seed=0, num_frames=20, frame_size=(64, 48))
    sequences = get_dataset("synthetic", root)
    write_run(tmp_path / "runA", sequences, shift=1.0)
    code = cli_main(
        [
            "plot",
            str(tmp_path / "runA"),
            "--dataset",
            "synthetic",
            "--root",
            str(root),
            "--output",
            str(tmp_path / "p"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "AUC" in out and "runA" in out and "2/2" in out and "protocol: lorat" in out
    assert (tmp_path / "p" / "success_plot.png").is_file()
    args = ["plot", str(tmp_path / "runA"), "--dataset", "synthetic", "--root", str(root)]
    assert cli_main([*args, "--output", str(tmp_path / "q"), "--protocol", "otb-toolkit"]) == 0
    out = capsys.readouterr().out
    assert "protocol: otb-toolkit" in out and "P_norm" in out
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["precision_plot.png", "success_plot.png"]
    assert cli_main(["plot", str(tmp_path / "nope"), "--dataset", "synthetic", "--root", str(root)]) == 2
    assert "result folder not found" in capsys.readouterr().err


def test_plot_cli_per_attribute_breakdown_from_lasot_toolkit_files(tmp_path, capsys):
    from test_data_readers import make_lasot, write_lines

    from modeling_lorat.data import get_dataset

    root = tmp_path / "LaSOT"
    make_lasot(root, names=("cat-1", "cat-2", "cat-3"))
    for name, flags in (("cat-1", "1,0,0,0,0,0,0,0,0,0,1,0,0,0"), ("cat-2", "1,0,0,0,0,0,0,0,0,0,0,0,0,0")):
        write_lines(root / "att" / f"{name}.txt", [flags])  # cat-3 has no attribute file
    (root / "testing_set.txt").write_text("cat-1\ncat-2\ncat-3\n")
    sequences = get_dataset("lasot", root)
    write_run(tmp_path / "run", sequences, shift=1.0)
    args = [
        "plot",
        str(tmp_path / "run"),
        "--dataset",
        "lasot",
        "--root",
        str(root),
        "--output",
        str(tmp_path / "p"),
    ]
    code = cli_main(args)
    assert code == 0 and "attributes_plot.png" in capsys.readouterr().out
    assert (tmp_path / "p" / "attributes_plot.png").read_bytes()[:8] == PNG_MAGIC
    table = json.loads((tmp_path / "p" / "attributes.json").read_text())["run"]
    assert table["IV"]["num_sequences"] == 2 and table["FM"]["num_sequences"] == 1
    assert "POC" not in table  # no sequence has it
