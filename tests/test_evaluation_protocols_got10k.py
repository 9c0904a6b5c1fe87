"""The ``got10k`` protocol (and ``lorat`` on GOT-10k) against the got10k toolkit itself: curves equal to 1e-6.

A GOT-10k val tree in the official layout with absent frames (cover 0), boxes on and beyond the image
border, zero-area predictions and predictions outside the image; results written as the runner writes
them; the toolkit's ``ExperimentGOT10k.report`` reads the same files.
"""

from __future__ import annotations

import numpy as np
import pytest
from got10k.experiments import ExperimentGOT10k
from PIL import Image

from modeling_lorat.data import get_dataset
from modeling_lorat.evaluation.results_io import write_sequence_results
from modeling_lorat.evaluation.runner import compute_dataset_metrics

ATOL = 1e-6


def make_val_tree(root, rng, num_seqs=6):
    """A GOT-10k val folder (the toolkit's layout); returns {name: predictions} (one too long: the last)."""
    val = root / "val"
    val.mkdir(parents=True)
    names = [f"GOT-10k_Val_{i + 1:06d}" for i in range(num_seqs)]
    (val / "list.txt").write_text("\n".join(names))
    preds = {}
    for i, name in enumerate(names):
        n, width, height = 20 + 9 * i, 160 + 20 * i, 120
        xy = rng.uniform(0, [width - 20, height - 20], (n, 2))
        gt = np.round(np.concatenate([xy, rng.uniform(8, 60, (n, 2))], axis=1), 4)
        gt[rng.random(n) < 0.1, 0] = 0.0  # on the left border
        gt[rng.random(n) < 0.1, 0] = width - 5.0  # beyond the right border
        cover = rng.integers(0, 9, n)
        cover[0] = 8
        pred = gt + rng.normal(0, 6, gt.shape)
        pred[:, 2:] = np.abs(pred[:, 2:]) + 1.0
        pred[rng.random(n) < 0.15, 2] = 0.0  # zero-area predictions
        pred[rng.random(n) < 0.2, 0] += 150.0  # outside the image: clipping matters
        ties = rng.random(n) < 0.2  # half the gt width: IoU 0.5 (just below, with the toolkit's eps)
        pred[ties] = np.concatenate([gt[ties, :2], gt[ties, 2:3] / 2, gt[ties, 3:]], axis=1)
        d = val / name
        d.mkdir()
        np.savetxt(d / "groundtruth.txt", gt, fmt="%.4f", delimiter=",")
        np.savetxt(d / "cover.label", cover, fmt="%d")
        np.savetxt(d / "absence.label", (cover == 0).astype(int), fmt="%d")
        np.savetxt(d / "cut_by_image.label", np.zeros(n, int), fmt="%d")
        (d / "meta_info.ini").write_text(f"[METAINFO]\nurl: x\nresolution: ({width}, {height})\n")
        Image.new("RGB", (width, height)).save(d / "00000001.jpg")
        for f in range(2, n + 1):
            (d / f"{f:08d}.jpg").touch()
        preds[name] = pred if i < num_seqs - 1 else np.concatenate([pred, pred[-2:]])
    return names, preds


def toolkit_report(root, result_dir, report_dir, names):
    (root / "val" / "list.txt").write_text("\n".join(names))
    experiment = ExperimentGOT10k(
        str(root), subset="val", result_dir=str(result_dir), report_dir=str(report_dir)
    )
    experiment.plot_curves = lambda *args, **kwargs: None  # the toolkit's 300-dpi plot is slow and irrelevant
    return experiment.report(["mine"])["mine"]


def test_got10k_protocol_equals_the_toolkit(tmp_path):
    rng = np.random.default_rng(4)
    names, preds = make_val_tree(tmp_path / "data", rng)
    results = tmp_path / "results" / "GOT-10k" / "mine"
    for name, pred in preds.items():
        write_sequence_results(results, name, pred, rng.uniform(0.01, 0.05, len(pred)), layout="got10k")
    sequences = get_dataset("got10k", tmp_path / "data", "val")
    good, bad = names[:-1], names[-1]

    toolkit = toolkit_report(tmp_path / "data", tmp_path / "results", tmp_path / "reports", good)
    with pytest.raises(AssertionError):  # the toolkit refuses results of another length ...
        toolkit_report(tmp_path / "data", tmp_path / "results", tmp_path / "reports", [bad])
    for protocol in ("got10k", "lorat"):  # ... and so do we, naming the sequence
        ours = compute_dataset_metrics("got10k", sequences, results, protocol=protocol)
        assert ours["family"] == "got10k" and ours["protocol"] == protocol
        assert (
            list(ours["errors"]) == [bad]
            and f"{bad}: {len(preds[bad])} predicted boxes" in ours["errors"][bad]
        )
        overall = toolkit["overall"]
        np.testing.assert_allclose(ours["curves"]["success"], overall["succ_curve"], rtol=0, atol=ATOL)
        assert ours["metrics"]["ao"] == pytest.approx(overall["ao"], abs=ATOL)
        assert ours["metrics"]["sr50"] == pytest.approx(overall["sr"], abs=ATOL)
        assert ours["metrics"]["sr75"] == pytest.approx(overall["succ_curve"][75], abs=ATOL)  # IoU > 0.75
        assert sorted(ours["per_sequence"]) == sorted(toolkit["seq_wise"])
        for name, seq_wise in toolkit["seq_wise"].items():
            assert ours["per_sequence"][name]["ao"] == pytest.approx(seq_wise["ao"], abs=ATOL)
            assert ours["per_sequence"][name]["sr50"] == pytest.approx(seq_wise["sr"], abs=ATOL)
    assert 0.05 < toolkit["overall"]["ao"] < 0.95  # neither trivial nor perfect
