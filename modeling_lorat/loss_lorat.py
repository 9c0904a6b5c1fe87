"""LoRAT training loss (official criterion ``box_with_score_map``).

* positives: every response-map cell inside the ground-truth box (rasterised onto the map);
* classification: BCE-with-logits over all cells, target 0 except positives, whose target is the
  detached IoU between the cell's predicted box and the ground truth (IoU-aware score);
* regression: GIoU loss (1 - GIoU) on the positive cells;
* both summed and divided by the number of positives (averaged across processes, at least 1).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .box_ops import box_overlaps_aligned


def positive_cell_mask(target_boxes: torch.Tensor, map_size: tuple[int, int]) -> torch.Tensor:
    """``(B, H*W)`` bool: cells covered by each normalised xyxy box (rows with NaN -> no positives).

    Cell range per box: ``[floor(x1 * W), floor(x2 * W + 1 - 1e-4))`` (official ``bbox_rasterize``), clipped to the map.
    """
    height, width = map_size
    boxes = target_boxes.detach().to(torch.float64)
    valid = torch.isfinite(boxes).all(dim=1)
    scale = boxes.new_tensor([width, height, width, height])
    scaled = torch.nan_to_num(boxes) * scale
    start = torch.floor(scaled[:, :2])
    end = torch.floor(scaled[:, 2:] + (1.0 - 1e-4))
    xs = torch.arange(width, device=boxes.device, dtype=boxes.dtype)
    ys = torch.arange(height, device=boxes.device, dtype=boxes.dtype)
    in_x = (xs[None, :] >= start[:, :1]) & (xs[None, :] < end[:, :1])
    in_y = (ys[None, :] >= start[:, 1:]) & (ys[None, :] < end[:, 1:])
    mask = in_y[:, :, None] & in_x[:, None, :]
    return (mask & valid[:, None, None]).flatten(1)


def _global_mean(value: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        value = value.clone()
        dist.all_reduce(value)
        value = value / dist.get_world_size()
    return value


def lorat_loss(
    score_map: torch.Tensor,
    pred_boxes: torch.Tensor,
    target_boxes: torch.Tensor,
    cls_weight: float = 1.0,
    box_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Official LoRAT loss.

    Args:
        score_map: ``(B, H, W)`` classification logits.
        pred_boxes: ``(B, H, W, 4)`` predicted normalised xyxy boxes.
        target_boxes: ``(B, 4)`` normalised xyxy ground truth in the search crop; a row of NaN marks a
            negative pair (classification loss only).
        cls_weight, box_weight: loss weights.

    Returns:
        ``(loss, {"loss_cls": ..., "loss_box": ...})``.
    """
    batch, height, width = score_map.shape
    logits = score_map.float().reshape(batch, height * width)
    boxes = pred_boxes.float().reshape(batch, height * width, 4)
    positives = positive_cell_mask(target_boxes, (height, width))
    batch_idx, cell_idx = positives.nonzero(as_tuple=True)
    num_pos = _global_mean(positives.sum().to(logits.dtype)).clamp(min=1.0)

    pos_pred = boxes[batch_idx, cell_idx]
    pos_gt = target_boxes.float()[batch_idx]
    targets = torch.zeros_like(logits)
    if len(batch_idx):
        with torch.no_grad():
            targets[batch_idx, cell_idx] = box_overlaps_aligned(pos_gt, pos_pred.detach(), "iou", eps=1e-6)
    loss_cls = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum() / num_pos
    if len(batch_idx):
        loss_box = (1.0 - box_overlaps_aligned(pos_pred, pos_gt, "giou", eps=1e-7)).sum() / num_pos
    else:
        loss_box = boxes.mean() * 0.0
    loss_cls = loss_cls * cls_weight
    loss_box = loss_box * box_weight
    return (loss_cls + loss_box).reshape(()), {"loss_cls": loss_cls.detach(), "loss_box": loss_box.detach()}
