"""Metrics building blocks vs the got10k toolkit and hand-made cases of pytracking's rules.

The protocols' golden comparisons against their reference code are in test_evaluation_protocols*.py.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from got10k.experiments import ExperimentOTB
from got10k.utils.metrics import center_error as tk_center_error
from got10k.utils.metrics import rect_iou as tk_rect_iou

from modeling_lorat.evaluation import metrics as M


def random_boxes(rng: np.random.Generator, n: int, size: float = 200.0) -> np.ndarray:
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(5, size / 2, (n, 2))
    return np.round(np.concatenate([xy, wh], axis=1), 2)


def jitter(rng: np.random.Generator, gt: np.ndarray, scale: float) -> np.ndarray:
    pred = gt + rng.normal(0, scale, gt.shape)
    pred[:, 2:] = np.abs(pred[:, 2:]) + 1.0
    return np.round(pred, 2)


# ------------------------------------------------------------------ building blocks vs toolkit
def test_thresholds_match_pytracking_torch_arange():
    expected = torch.arange(0.0, 1.0 + 0.05, 0.05, dtype=torch.float64).numpy()
    assert len(M.OVERLAP_THRESHOLDS) == 21
    np.testing.assert_array_equal(M.OVERLAP_THRESHOLDS, expected)
    np.testing.assert_array_equal(
        M.NORM_CENTER_THRESHOLDS, torch.arange(0, 51, dtype=torch.float64).numpy() / 100
    )
    np.testing.assert_allclose(M.OVERLAP_THRESHOLDS, np.arange(0, 1.05, 0.05), atol=1e-12)


def test_iou_and_center_error_match_got10k_toolkit():
    rng = np.random.default_rng(0)
    gt = random_boxes(rng, 500)
    pred = jitter(rng, gt, 20.0)
    np.testing.assert_allclose(M.iou_overlap(pred, gt), tk_rect_iou(pred.copy(), gt.copy()), atol=1e-9)
    np.testing.assert_allclose(M.center_error(pred, gt), tk_center_error(pred, gt), atol=1e-9)
    bound = (180.0, 150.0)
    np.testing.assert_allclose(
        M.got10k_rect_iou(pred, gt, bound), tk_rect_iou(pred.copy(), gt.copy(), bound=bound), atol=1e-12
    )


def test_ope_curves_match_got10k_otb_toolkit():
    """All-valid sequences: pytracking's rules reduce to got10k's OTB curves (pred[0] = gt[0]; float32)."""
    rng = np.random.default_rng(1)
    otb = types.SimpleNamespace(nbins_iou=21, nbins_ce=51)
    curves, tk_succ, tk_prec = {}, [], []
    for s in range(6):
        # Integer gt (as the benchmarks'): with pytracking's ``x + w - 1`` arithmetic a box equal to a
        # fractional gt can get IoU 1 + 1e-16, a success even at threshold 1.0 (reproduced here,
        # absent from the OTB toolkit); pred[0] = gt[0] would then differ at that one threshold.
        gt = np.round(random_boxes(rng, 60 + 10 * s)) + [1, 1, 0, 0]  # all four values > 0: all valid
        pred = jitter(rng, gt, 4.0 + 6 * s)
        pred[0] = gt[0]
        curves[f"s{s}"] = M.ope_sequence_curves(pred, gt, dataset="otb", name=f"s{s}")
        succ, prec = ExperimentOTB._calc_curves(
            otb, tk_rect_iou(pred.copy(), gt.copy()), tk_center_error(pred, gt)
        )
        np.testing.assert_allclose(curves[f"s{s}"].success, succ, atol=1e-7)  # float32, as pytracking
        np.testing.assert_allclose(curves[f"s{s}"].precision, prec, atol=1e-7)
        tk_succ.append(succ)
        tk_prec.append(prec)
    result = M.ope_dataset_metrics(curves)
    assert round(result["success_auc"], 4) == round(float(np.mean(np.mean(tk_succ, axis=0))), 4)
    assert round(result["precision"], 4) == round(float(np.mean(tk_prec, axis=0)[20]), 4)
    assert 0.0 < result["success_auc"] < 1.0 and 0.0 < result["norm_precision"] <= 1.0


def test_normalised_precision_by_hand():
    gt = np.array([[10, 10, 20, 40]] * 4, dtype=float)
    pred = gt.copy()
    pred[1, 0] += 3.0  # 3 px / 20 px = 0.15 <= 0.2 -> success
    pred[2, 1] += 10.0  # 10 px / 40 px = 0.25 > 0.2 -> failure
    pred[3, 0] += 5.0  # 0.25 horizontally -> failure (and 5 px <= 20 px precision success)
    curves = M.ope_sequence_curves(pred, gt, name="n")
    assert curves.norm_precision[20] == pytest.approx(2 / 4)
    assert curves.precision[20] == pytest.approx(4 / 4)
    assert curves.norm_precision[16] == pytest.approx(2 / 4)  # 0.15 <= 0.16
    assert curves.norm_precision[14] == pytest.approx(1 / 4)


# ------------------------------------------------------------------ hand-made OPE cases
def test_perfect_tracker():
    gt = np.round(random_boxes(np.random.default_rng(2), 30))
    curves = {"a": M.ope_sequence_curves(gt.copy(), gt, name="a")}
    result = M.ope_dataset_metrics(curves)
    # pytracking counts IoU > threshold over 0, 0.05, ..., 1: a perfect IoU fails only at 1.0.
    assert result["success_auc"] == pytest.approx(20 / 21)
    assert result["precision"] == 1.0 and result["norm_precision"] == 1.0
    assert curves["a"].avg_overlap == pytest.approx(1.0)


def test_disjoint_tracker_scores_only_the_given_first_frame():
    n = 25
    gt = np.tile([10.0, 10.0, 20.0, 20.0], (n, 1))
    pred = np.tile([300.0, 300.0, 20.0, 20.0], (n, 1))
    result = M.ope_dataset_metrics({"d": M.ope_sequence_curves(pred, gt, name="d")})
    assert result["success_auc"] == pytest.approx((20 / 21) / n)
    assert result["precision"] == pytest.approx(1 / n)
    assert result["norm_precision"] == pytest.approx(1 / n)


def test_half_overlap():
    n = 11
    gt = np.tile([1.0, 1.0, 30.0, 10.0], (n, 1))
    pred = np.tile([1.0, 1.0, 15.0, 10.0], (n, 1))  # inside gt, half its area: IoU = 0.5
    curves = M.ope_sequence_curves(pred, gt, name="h")
    np.testing.assert_allclose(M.iou_overlap(pred, gt), 0.5)
    # IoU 0.5 beats thresholds 0 .. 0.45 (10 of 21), not 0.5; frame 0 is the gt (20 of 21).
    assert curves.success_auc == pytest.approx(((n - 1) * 10 + 20) / (21 * n))
    assert curves.success[10] == pytest.approx(1 / n)
    ious = M.got10k_sequence_ious(pred, gt, np.ones(n, bool), (100, 100))
    assert M.got10k_metrics({"h": ious}) | {"success_curve": None} == {
        "ao": pytest.approx(0.5),
        "sr50": 0.0,
        "sr75": 0.0,
        "num_sequences": 1,
        "num_frames": n - 1,
        "success_curve": None,
    }


def test_invalid_frames_lasot_vs_generic():
    n = 10
    gt = np.tile([50.0, 50.0, 20.0, 20.0], (n, 1))
    pred = gt.copy()
    pred[3:5] = [400.0, 400.0, 20.0, 20.0]  # wrong where the target is absent
    visible = np.ones(n, bool)
    visible[3:5] = False
    lasot = M.ope_sequence_curves(pred, gt, dataset="lasot", target_visible=visible, name="l")
    # LaSOT: divided by all frames, invisible frames fail everything.
    assert lasot.success[0] == pytest.approx(0.8)
    assert lasot.precision[20] == pytest.approx(0.8)
    assert lasot.norm_precision[20] == pytest.approx(0.8)
    assert lasot.avg_overlap == pytest.approx(1.0) and lasot.num_valid == 8
    generic = M.ope_sequence_curves(pred, gt, dataset="lasot_ext", target_visible=visible, name="g")
    # pytracking's generic branch sets the normalised error of invalid frames to -1: a success.
    assert generic.success[0] == pytest.approx(0.8)
    assert generic.precision[20] == pytest.approx(0.8)
    assert generic.norm_precision[20] == pytest.approx(1.0)
    excluded = M.ope_sequence_curves(pred, gt, target_visible=visible, exclude_invalid_frames=True, name="e")
    assert excluded.success[0] == pytest.approx(1.0)
    # Zero-size gt, gt touching the left / top border and NaN gt (UAV only) are invalid frames too.
    gt2 = gt.copy()
    gt2[6] = [0, 0, 0, 0]
    gt2[8] = [0, 10, 40, 40]  # the example: pytracking does not score it
    gt2[7] = np.nan
    zero = M.ope_sequence_curves(gt.copy(), gt2, dataset="uav", name="z")
    assert zero.num_valid == 7 and zero.success[0] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="z: NaN in the ground truth .*only on UAV123"):
        M.ope_sequence_curves(gt.copy(), gt2, dataset="otb", name="z")


def test_zero_size_prediction_takes_the_previous_box():
    gt = np.tile([10.0, 10.0, 20.0, 20.0], (5, 1))
    pred = gt.copy()
    pred[2] = [200.0, 200.0, 20.0, 20.0]
    pred[3] = [10.0, 10.0, 0.0, 0.0]  # replaced by pred[2] (a miss)
    errors = M.ope_sequence_errors(pred, gt, name="z")
    np.testing.assert_allclose(errors.overlap, [1, 1, 0, 0, 1])


def test_bad_predictions_raise_naming_the_sequence():
    gt = np.tile([10.0, 10.0, 20.0, 20.0], (5, 1))
    pred = gt.copy()
    pred[2, 0] = np.nan
    with pytest.raises(ValueError, match="seqA.*frame 2"):
        M.ope_sequence_curves(pred, gt, name="seqA")
    pred = gt.copy()
    pred[1, 2] = -3
    with pytest.raises(ValueError, match="seqB.*negative"):
        M.ope_sequence_curves(pred, gt, name="seqB")
    with pytest.raises(ValueError, match="seqC: 3 result lines for 5 frames"):
        M.ope_sequence_curves(gt[:3], gt, dataset="lasot", target_visible=np.ones(5, bool), name="seqC")
    short = M.ope_sequence_curves(gt[:3], gt, dataset="otb", name="seqD")  # padded with zeros
    assert short.success[0] == pytest.approx(3 / 5)


def test_got10k_perfect_and_disjoint():
    gt = random_boxes(np.random.default_rng(3), 20)
    perfect = M.got10k_metrics({"p": M.got10k_sequence_ious(gt, gt, np.ones(20, bool), (400, 400))})
    assert perfect["ao"] == pytest.approx(1.0) and perfect["sr50"] == 1.0 and perfect["sr75"] == 1.0
    far = np.tile([1000.0, 1000.0, 10.0, 10.0], (20, 1))
    wrong = M.got10k_metrics({"w": M.got10k_sequence_ious(far, gt, np.ones(20, bool), (2000, 2000))})
    assert wrong["ao"] == 0.0 and wrong["sr50"] == 0.0 and wrong["sr75"] == 0.0
