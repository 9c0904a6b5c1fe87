"""Submission zips against the servers' own writers: the got10k toolkit (run here) and the official LoRAT
TrackingNet writer + rasteriser (``tests/fixtures/protocols/submission.npz``, ``tools/make_submission_golden.py``).

The fixture's float boxes sit within 1e-4 of pixel edges, where rasterising 4-decimal text instead of
the floats moves a third of them by a pixel.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from got10k.experiments import ExperimentGOT10k
from got10k.trackers import Tracker

from modeling_lorat.cli import main as cli_main
from modeling_lorat.data.sequence import TrackingSequence
from modeling_lorat.evaluation.results_io import format_boxes, read_sequence_results, write_sequence_results
from modeling_lorat.evaluation.submission import (
    package_got10k_submission,
    package_trackingnet_submission,
    rasterize_boxes_xywh,
)

FIXTURE = Path(__file__).parent / "fixtures" / "protocols" / "submission.npz"


def load_fixture() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


GOLDEN = load_fixture()
NAMES = sorted(k.split("/")[1] for k in GOLDEN if k.startswith("boxes/"))


def write_runner_results(results_dir: Path, layout: str = "ope") -> list[TrackingSequence]:
    """The fixture's float boxes written as the runner writes them; the sequences they belong to."""
    sequences = []
    for name in NAMES:
        boxes = GOLDEN[f"boxes/{name}"]
        write_sequence_results(results_dir, name, boxes, GOLDEN[f"times/{name}"], layout=layout)
        sequences.append(TrackingSequence(name, [None] * len(boxes), boxes, dataset="got10k"))
    return sequences


def zip_layout(path: Path) -> list[tuple[str, bool, int]]:
    with zipfile.ZipFile(path) as archive:
        return sorted((i.filename, i.is_dir(), i.compress_type) for i in archive.infolist())


def test_result_files_hold_the_exact_floats(tmp_path):
    write_runner_results(tmp_path)
    for name in NAMES:
        read = read_sequence_results(tmp_path, name).boxes
        np.testing.assert_array_equal(read, GOLDEN[f"boxes/{name}"])  # bit for bit
    # What 4-decimal files would have cost: rasterised from the text, many boxes end 1 px off.
    off = sum(
        int(np.any(rasterize_boxes_xywh(np.loadtxt(format_boxes(GOLDEN[f"boxes/{n}"]).splitlines(), delimiter=","))
                   != GOLDEN[f"rasterized/{n}"], axis=1).sum())
        for n in NAMES
    )  # fmt: skip
    assert off > 100


class FixedBoxes(Tracker):
    """A deterministic got10k-toolkit tracker returning the official rasteriser's boxes of the fixture."""

    def __init__(self):
        super().__init__("golden", is_deterministic=True)

    def track(self, img_files, box, visualize=False):
        name = Path(img_files[0]).parent.name
        return GOLDEN[f"rasterized/{name}"], GOLDEN[f"times/{name}"]


def test_got10k_zip_equals_the_toolkits_own(tmp_path, monkeypatch):
    """ExperimentGOT10k.run (deterministic tracker) + report on the test subset write the reference zip."""
    root = tmp_path / "GOT-10k"
    for split in ("val", "test"):
        (root / split).mkdir(parents=True)
        (root / split / "list.txt").write_text("\n".join(NAMES))
    for name in NAMES:
        seq_dir = root / "val" / name
        seq_dir.mkdir()
        n = len(GOLDEN[f"boxes/{name}"])
        np.savetxt(seq_dir / "groundtruth.txt", GOLDEN[f"rasterized/{name}"], fmt="%.4f", delimiter=",")
        for f in range(1, n + 1):
            (seq_dir / f"{f:08d}.jpg").touch()
        (root / "test" / name).mkdir()
    monkeypatch.chdir(tmp_path)
    ExperimentGOT10k(str(root), subset="val", result_dir="toolkit").run(FixedBoxes())
    ExperimentGOT10k(str(root), subset="test", result_dir="toolkit").report(["golden"])
    reference = tmp_path / "toolkit" / "GOT-10k" / "golden.zip"

    sequences = write_runner_results(tmp_path / "run" / "results")
    ours = package_got10k_submission(tmp_path / "run", tmp_path / "ours.zip", sequences)
    assert zip_layout(ours) == zip_layout(reference)  # <seq>/ folder entries, _001 and _time files, deflated
    assert any(is_dir for _, is_dir, _ in zip_layout(ours))
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(reference) as b:
        for info in b.infolist():
            if not info.is_dir():
                assert a.read(info.filename) == b.read(info.filename), info.filename
        assert a.read(f"{NAMES[0]}/{NAMES[0]}_001.txt").decode().split("\n")[0].count(".") == 4  # %.3f


def test_trackingnet_zip_equals_the_official_writer(tmp_path):
    sequences = write_runner_results(tmp_path / "results", layout="got10k")  # either layout is accepted
    ours = package_trackingnet_submission(tmp_path / "results", tmp_path / "tn.zip", sequences)
    example = GOLDEN["devkit/example_names"].tolist()  # the devkit's dummy_subm.zip: flat <seq>.txt files
    assert all("/" not in name and name.endswith(".txt") for name in example)
    assert zip_layout(ours) == [(f"{n}.txt", False, zipfile.ZIP_DEFLATED) for n in NAMES]
    with zipfile.ZipFile(ours) as archive:
        for name in NAMES:
            assert archive.read(f"{name}.txt").decode() == GOLDEN[f"trackingnet/{name}"].item(), name


def make_got10k_test_tree(root: Path, frames: dict[str, int]) -> None:
    split = root / "test"
    split.mkdir(parents=True)
    (split / "list.txt").write_text("\n".join(frames))
    for name, n in frames.items():
        (split / name).mkdir()
        (split / name / "groundtruth.txt").write_text("10,20,30,40\n")
        for f in range(1, n + 1):
            (split / name / f"{f:08d}.jpg").touch()


@pytest.mark.parametrize("dataset", ["got10k", "trackingnet"])
def test_package_submission_refuses_a_wrong_line_count(tmp_path, capsys, dataset):
    """Issue 13: a result with one line fewer than frames (a shifted sequence) is refused, naming both counts."""
    frames = {"GOT-10k_Test_000001": 5, "GOT-10k_Test_000002": 6}
    make_got10k_test_tree(tmp_path / "data", frames)
    for name, n in frames.items():
        boxes = np.tile([10.0, 20.0, 30.0, 40.0], (n - (name.endswith("2")), 1))
        write_sequence_results(
            tmp_path / "run" / "results", name, boxes, np.full(len(boxes), 0.01), layout="got10k"
        )
    out = tmp_path / "sub.zip"
    args = [
        "package-submission",
        "--dataset",
        dataset,
        "--results",
        str(tmp_path / "run"),
        "--output",
        str(out),
    ]
    if dataset == "trackingnet":  # a TrackingNet test tree: frames/<seq>/N.jpg, anno/<seq>.txt
        tn = tmp_path / "tn" / "TEST"
        for name, n in frames.items():
            (tn / "frames" / name).mkdir(parents=True)
            for f in range(n):
                (tn / "frames" / name / f"{f}.jpg").touch()
            (tn / "anno").mkdir(exist_ok=True)
            (tn / "anno" / f"{name}.txt").write_text("10,20,30,40\n")
        args += ["--root", str(tmp_path / "tn")]
    else:
        args += ["--root", str(tmp_path / "data")]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    box_file = tmp_path / "run" / "results" / "GOT-10k_Test_000002" / "GOT-10k_Test_000002_001.txt"
    assert f"GOT-10k_Test_000002: result file {box_file} has 5 lines, expected 6" in err
    assert not out.exists()
    # Without the wrong sequence the same command writes the zip.
    capsys.readouterr()
    (box_file.parent / box_file.name).write_text(format_boxes(np.tile([10.0, 20.0, 30.0, 40.0], (6, 1))))
    (box_file.parent / "GOT-10k_Test_000002_time.txt").write_text("0.01\n" * 6)
    assert cli_main(args) == 0 and out.is_file()
