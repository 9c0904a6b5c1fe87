"""Official LoRAT loss on hand-made cases."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from modeling_lorat.box_ops import box_overlaps_aligned
from modeling_lorat.loss_lorat import lorat_loss, positive_cell_mask


def test_positive_cells_are_every_cell_inside_the_box():
    mask = positive_cell_mask(torch.tensor([[0.25, 0.0, 0.75, 0.5]]), (4, 4)).view(4, 4)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0:2, 1:3] = True
    assert torch.equal(mask, expected)
    # official rasterisation: end = floor(x2 * W + 1 - 1e-4); a box ending just inside a cell includes it
    mask = positive_cell_mask(torch.tensor([[0.0, 0.0, 0.26, 0.26]]), (4, 4)).view(4, 4)
    assert mask.sum() == 4
    # negative pair (NaN row) has no positives; out-of-crop parts are clipped
    assert positive_cell_mask(torch.full((1, 4), float("nan")), (4, 4)).sum() == 0
    assert positive_cell_mask(torch.tensor([[-0.5, -0.5, 0.2, 0.2]]), (4, 4)).sum() == 1


def test_perfect_prediction_gives_zero_giou_and_iou_targets_of_one():
    gt = torch.tensor([[0.25, 0.25, 0.75, 0.75]])
    boxes = gt.view(1, 1, 1, 4).expand(1, 4, 4, 4).clone()
    score = torch.full((1, 4, 4), -20.0)
    score[0, 1:3, 1:3] = 20.0
    loss, parts = lorat_loss(score, boxes, gt)
    assert parts["loss_box"].abs() < 1e-6
    assert parts["loss_cls"] < 1e-6  # targets are IoU = 1 on the 4 positives, 0 elsewhere
    assert loss.shape == ()


def test_values_on_a_hand_computed_case():
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5]])  # positives: the 2x2 top-left cells of a 4x4 map
    boxes = torch.zeros(1, 4, 4, 4)
    boxes[..., 2:] = 0.25  # every cell predicts [0, 0, 0.25, 0.25]: IoU 0.25 with gt, GIoU 0.25
    score = torch.zeros(1, 4, 4)
    loss, parts = lorat_loss(score, boxes, gt)
    num_pos = 4
    iou = box_overlaps_aligned(gt, boxes[0, 0, :1], "iou")
    targets = torch.zeros(16)
    targets[[0, 1, 4, 5]] = iou
    expected_cls = F.binary_cross_entropy_with_logits(torch.zeros(16), targets, reduction="sum") / num_pos
    assert math.isclose(parts["loss_cls"].item(), expected_cls.item(), rel_tol=1e-6)
    assert math.isclose(parts["loss_box"].item(), 1 - 0.25, rel_tol=1e-6)
    assert math.isclose(loss.item(), expected_cls.item() + 0.75, rel_tol=1e-6)


def test_negative_pairs_contribute_classification_only_and_keep_gradients():
    score = torch.zeros(2, 4, 4, requires_grad=True)
    boxes = torch.rand(2, 4, 4, 4, requires_grad=True)
    labels = torch.full((2, 4), float("nan"))
    loss, parts = lorat_loss(score, boxes, labels)
    assert parts["loss_box"] == 0
    assert math.isclose(
        parts["loss_cls"].item(), 32 * math.log(2), rel_tol=1e-6
    )  # sum over cells / max(0, 1)
    loss.backward()
    assert score.grad is not None and boxes.grad is not None and torch.all(boxes.grad == 0)


def test_loss_weights_scale_parts():
    gt = torch.tensor([[0.1, 0.1, 0.6, 0.6]])
    boxes = torch.rand(1, 4, 4, 2)
    boxes = torch.cat([boxes * 0.5, boxes * 0.5 + 0.4], dim=-1)
    score = torch.randn(1, 4, 4)
    _, base = lorat_loss(score, boxes, gt)
    _, weighted = lorat_loss(score, boxes, gt, cls_weight=2.0, box_weight=0.5)
    assert torch.allclose(weighted["loss_cls"], 2 * base["loss_cls"]) and torch.allclose(
        weighted["loss_box"], 0.5 * base["loss_box"]
    )


def test_giou_matches_definition():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
    assert math.isclose(box_overlaps_aligned(a, b, "giou").item(), 0 - (3 - 2) / 3, rel_tol=1e-6)
    assert math.isclose(box_overlaps_aligned(a, a, "giou").item(), 1.0, rel_tol=1e-6)


def test_loss_and_gradients_match_official_criterion():
    """`tools/make_loss_golden.py`: the official SimpleCriteria + label assignment on random outputs."""
    from pathlib import Path

    from safetensors.torch import load_file

    golden = load_file(Path(__file__).parent / "fixtures" / "golden" / "loss.safetensors")
    batch, grid = golden["score_map"].shape[:2]
    positives = positive_cell_mask(golden["target_boxes"], (grid, grid))
    want = torch.zeros(batch, grid * grid, dtype=torch.bool)
    want[golden["positive_batch"], golden["positive_cell"]] = True
    assert torch.equal(positives, want)

    score_map = golden["score_map"].clone().requires_grad_()
    pred_boxes = golden["pred_boxes"].clone().requires_grad_()
    loss, parts = lorat_loss(score_map, pred_boxes, golden["target_boxes"])
    loss.backward()
    torch.testing.assert_close(parts["loss_cls"].reshape(1), golden["loss_cls"], rtol=1e-5, atol=0)
    torch.testing.assert_close(parts["loss_box"].reshape(1), golden["loss_box"], rtol=1e-5, atol=0)
    torch.testing.assert_close(loss.reshape(1), golden["loss"], rtol=1e-5, atol=0)
    torch.testing.assert_close(score_map.grad, golden["grad_score_map"], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(pred_boxes.grad, golden["grad_pred_boxes"], rtol=1e-4, atol=1e-7)
