"""Every evaluation protocol against its reference code, run unmodified: all curve points equal to 1e-6.

``lorat`` (official LoRAT handler), ``pytracking`` (extract_results), ``lasot-toolkit`` and ``otb-toolkit``
(MATLAB, under GNU Octave) are compared with the golden fixtures of ``tools/make_*_golden.py`` on the
random sequences of ``tools/make_protocol_cases.py`` (file coordinates); ``got10k`` runs the got10k
toolkit itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modeling_lorat.commands.evaluate import PROTOCOL_NAMES
from modeling_lorat.data.sequence import TrackingSequence
from modeling_lorat.evaluation.protocols import PROTOCOLS, get_protocol
from modeling_lorat.evaluation.results_io import write_sequence_results
from modeling_lorat.evaluation.runner import compute_dataset_metrics

FIXTURES = Path(__file__).parent / "fixtures" / "protocols"
GOLDEN = {
    "lorat": "lorat.npz",
    "pytracking": "pytracking.npz",
    "lasot-toolkit": "lasot_toolkit.npz",
    "otb-toolkit": "otb_toolkit.npz",
}
FLAVOURS = ("lasot", "lasot_ext", "uav", "otb")
FILE_OFFSET = {"lasot": 1.0}  # LaSOT's files are 1-based; the reader's boxes 0-based
ATOL = 1e-6


def load_cases() -> dict[str, list[dict[str, np.ndarray]]]:
    with np.load(FIXTURES / "cases.npz") as data:
        return {
            flavour: [
                {key: data[f"{flavour}/{i}/{key}"] for key in ("gt", "pred", "visible")}
                for i in range(int(data[f"{flavour}/count"]))
            ]
            for flavour in FLAVOURS
        }


CASES = load_cases()


def golden(protocol: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / GOLDEN[protocol]) as data:
        return {key: data[key] for key in data.files}


def in_coordinates(protocol: str, flavour: str, case: dict) -> tuple[np.ndarray, np.ndarray]:
    """(pred, gt) in what the protocol's functions take: file values, or the readers' memory boxes."""
    pred, gt = case["pred"].copy(), case["gt"].copy()
    if PROTOCOLS[protocol].coordinates == "memory":
        pred[:, :2] -= FILE_OFFSET.get(flavour, 0.0)
        gt[:, :2] -= FILE_OFFSET.get(flavour, 0.0)
    return pred, gt


def test_protocol_registry():
    assert tuple(PROTOCOLS) == PROTOCOL_NAMES  # the CLI's --protocol choices (kept import-light)
    assert get_protocol(None).name == "lorat" and get_protocol("LaSOT_toolkit").name == "lasot-toolkit"
    with pytest.raises(
        ValueError, match="unknown evaluation protocol 'vot'; choose one of lorat, pytracking"
    ):
        get_protocol("vot")
    assert PROTOCOLS["lorat"].family("got10k") == "got10k" and PROTOCOLS["lorat"].family("lasot") == "ope"
    assert (
        PROTOCOLS["pytracking"].family("got10k") == "ope" and PROTOCOLS["got10k"].family("lasot") == "got10k"
    )
    for name in GOLDEN:
        assert golden(name)["meta/source"].item().count("@") == 1  # reference and commit recorded


@pytest.mark.parametrize("protocol", list(GOLDEN))
def test_sequence_curves_equal_the_reference(protocol):
    proto, ref = PROTOCOLS[protocol], golden(protocol)
    checked, refused = 0, 0
    for flavour, sequences in CASES.items():
        for i, case in enumerate(sequences):
            key, name = f"{flavour}/{i}", f"{flavour}-{i}"
            if f"{key}/error" not in ref and f"{key}/success" not in ref:
                continue  # the reference was not run on this flavour (OTB toolkit: otb, uav)
            pred, gt = in_coordinates(protocol, flavour, case)
            if f"{key}/error" in ref:  # the reference refuses (raises / fails): so does the protocol
                with pytest.raises(ValueError, match=name):
                    proto.sequence_curves(pred, gt, case["visible"], flavour, name)
                refused += 1
                continue
            curves = proto.sequence_curves(pred, gt, case["visible"], flavour, name)
            for kind in ("success", "precision", "norm_precision"):
                if f"{key}/{kind}" not in ref:
                    assert getattr(curves, kind) is None
                    continue
                np.testing.assert_allclose(getattr(curves, kind), ref[f"{key}/{kind}"], rtol=0, atol=ATOL,
                                           err_msg=f"{protocol} {key} {kind}")  # fmt: skip
            if f"{key}/avg_overlap" in ref:
                assert curves.avg_overlap == pytest.approx(float(ref[f"{key}/avg_overlap"]), abs=ATOL)
            checked += 1
    assert checked >= 12 and refused >= 4


def write_flavour(tmp_path: Path, flavour: str) -> list[TrackingSequence]:
    """Sequences as the readers give them (LaSOT 0-based) and their result files (file values)."""
    sequences = []
    for i, case in enumerate(CASES[flavour]):
        gt = case["gt"].copy()
        gt[:, :2] -= FILE_OFFSET.get(flavour, 0.0)
        name = f"{flavour}-{i}"
        sequences.append(TrackingSequence(name, [None] * len(gt), gt, ~case["visible"], dataset=flavour))
        write_sequence_results(tmp_path, name, case["pred"], np.full(len(case["pred"]), 0.02))
    return sequences


@pytest.mark.parametrize("protocol", ["lorat", "pytracking"])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_dataset_curves_equal_the_reference(tmp_path, protocol, flavour):
    """Through the result files and the runner: coordinates, lengths, refused sequences, dataset mean."""
    ref = golden(protocol)
    sequences = write_flavour(tmp_path, flavour)
    out = compute_dataset_metrics(flavour, sequences, tmp_path, protocol=protocol)
    assert out["protocol"] == protocol and out["family"] == "ope"
    assert sorted(out["per_sequence"]) == sorted(ref[f"{flavour}/mean/sequences"].tolist())
    refused = [
        f"{flavour}-{k.split('/')[1]}" for k in ref if k.startswith(f"{flavour}/") and k.endswith("/error")
    ]
    assert sorted(out["errors"]) == sorted(refused)
    mean = f"{flavour}/mean"
    for ours, theirs in (
        ("success", "success"),
        ("precision", "precision"),
        ("norm_precision", "norm_precision"),
    ):
        np.testing.assert_allclose(out["curves"][ours], ref[f"{mean}/{theirs}"], rtol=0, atol=ATOL)
    for ours, theirs in (
        ("success_auc", "success_auc"), ("precision", "precision_score"), ("norm_precision", "norm_precision_score")
    ):  # fmt: skip
        assert out["metrics"][ours] == pytest.approx(float(ref[f"{mean}/{theirs}"]), abs=ATOL)
    np.testing.assert_array_equal(out["curves"]["overlap_thresholds"], PROTOCOLS[protocol].overlap_thresholds)


def test_the_issue_examples_through_the_runner(tmp_path):
    """gt [0,10,40,40] (left border): lorat scores it, pytracking does not; LaSOT NP@0.2 in 1-based files."""
    border = TrackingSequence("b", [None] * 2, [[0, 10, 40, 40]] * 2, dataset="otb")
    write_sequence_results(tmp_path / "b", "b", [[0, 10, 40, 40]] * 2)
    lorat = compute_dataset_metrics("otb", [border], tmp_path / "b", protocol="lorat")
    pyt = compute_dataset_metrics("otb", [border], tmp_path / "b", protocol="pytracking")
    assert lorat["per_sequence"]["b"]["avg_overlap"] == 1.0 and lorat["curves"]["success"][0] == 1.0
    assert pyt["curves"]["success"][0] == 0.0 and np.isnan(pyt["per_sequence"]["b"]["avg_overlap"])
    # LaSOT: gt file [1,50,20,40], result [5,50,20,40]: the normalised error is exactly 0.2 in file
    # coordinates (0.19999999999999996 <= 0.2), 0.20000000000000007 in the reader's 0-based ones.
    lasot = TrackingSequence("l", [None] * 2, [[0, 49, 20, 40]] * 2, dataset="lasot")
    write_sequence_results(tmp_path / "l", "l", [[0, 49, 20, 40], [4, 49, 20, 40]], offset=1.0)
    assert (tmp_path / "l" / "l.txt").read_text().splitlines()[1] == "5.0,50.0,20.0,40.0"
    for protocol in ("pytracking", "lorat", "lasot-toolkit"):
        out = compute_dataset_metrics("lasot", [lasot], tmp_path / "l", protocol=protocol)
        assert out["metrics"]["norm_precision"] == 1.0, protocol


def test_sequences_without_valid_ground_truth_after_frame_0_are_scored(tmp_path):
    """All-zero / absent later frames are scored (as the references do); all-NaN later frames are withheld."""
    zeros = TrackingSequence("z", [None] * 4, [[5, 5, 10, 10]] + [[0, 0, 0, 0]] * 3, dataset="otb")
    withheld = TrackingSequence("w", [None] * 4, [[5, 5, 10, 10]] + [[np.nan] * 4] * 3, dataset="otb")
    for seq in (zeros, withheld):
        write_sequence_results(tmp_path, seq.name, [[5, 5, 10, 10]] * 4)
    out = compute_dataset_metrics("otb", [zeros, withheld], tmp_path, protocol="pytracking")
    assert list(out["per_sequence"]) == ["z"] and out["without_ground_truth"] == ["w"]
    assert out["metrics"]["success_auc"] == pytest.approx(20 / 21 / 4)  # frame 0 only, divided by 4 frames


def test_matlab_toolkits_leave_out_all_zero_sequences_from_the_mean(tmp_path):
    """plotDrawSave's ``aa(sum(aa, 2) > eps, :)``: a sequence with an all-zero success curve is not averaged."""
    good = TrackingSequence("g", [None] * 20, [[5, 5, 10, 10]] * 20, dataset="otb")
    empty = TrackingSequence("e", [None] * 20, [[5, 5, 10, 10]] + [[0, 0, 0, 0]] * 19, dataset="lasot_ext")
    empty.absent[0] = True  # frame 0 removed too: no overlap counts at all; invalid frames: precision -1
    for seq in (good, empty):
        write_sequence_results(tmp_path, seq.name, [[5, 5, 10, 10]] * 20)
    out = compute_dataset_metrics("lasot_ext", [good, empty], tmp_path, protocol="lasot-toolkit")
    assert out["per_sequence"]["e"]["success_auc"] == 0.0
    assert out["metrics"]["success_auc"] == pytest.approx(out["per_sequence"]["g"]["success_auc"])
    assert out["metrics"]["precision"] == pytest.approx((1.0 + 19 / 20) / 2)  # both precision curves kept
    pyt = compute_dataset_metrics("lasot_ext", [good, empty], tmp_path, protocol="pytracking")
    assert pyt["metrics"]["success_auc"] == pytest.approx(pyt["per_sequence"]["g"]["success_auc"] / 2)
    otb = compute_dataset_metrics("otb", [good], tmp_path, protocol="otb-toolkit")
    assert set(otb["metrics"]) == {"success_auc", "precision"} and "norm_precision" not in otb["curves"]


def test_model_card_records_the_protocol(tmp_path):
    from hub_cards import render_model_card
    from modeling_lorat.testing_utils import save_tiny_checkpoint

    model = save_tiny_checkpoint(tmp_path / "model")
    summaries = [
        {"dataset": "lasot", "split": "test", "protocol": "pytracking", "metrics": {"success_auc": 0.7}},
        {"dataset": "got10k", "split": "val", "metrics": {"ao": 0.6}},  # written before protocols existed
    ]
    text = str(render_model_card(model, "me/lorat-tiny", summaries))
    assert "| LaSOT | test | Success AUC 70.0 | `pytracking` |" in text
    assert "| GOT-10k | val | AO 60.0 | not recorded |" in text
    assert "`lorat` is the official LoRAT evaluation" in text
