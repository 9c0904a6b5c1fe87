"""Box conversions and overlaps.

Conventions: ``xywh`` = (x, y, width, height) in pixels (benchmarks' format, the external API);
``xyxy`` = (x1, y1, x2, y2) with continuous coordinates (x2 = x + w). Numpy helpers work on
``(..., 4)`` arrays; torch helpers on ``(..., 4)`` tensors.
"""

from __future__ import annotations

import numpy as np
import torch


def xywh_to_xyxy(box: np.ndarray) -> np.ndarray:
    """``(..., 4)`` xywh -> xyxy (float64)."""
    box = np.asarray(box, dtype=np.float64)
    return np.concatenate([box[..., :2], box[..., :2] + box[..., 2:]], axis=-1)


def xyxy_to_xywh(box: np.ndarray) -> np.ndarray:
    """``(..., 4)`` xyxy -> xywh (float64)."""
    box = np.asarray(box, dtype=np.float64)
    return np.concatenate([box[..., :2], box[..., 2:] - box[..., :2]], axis=-1)


def clip_xyxy(box: np.ndarray, size_wh) -> np.ndarray:
    """Clip ``(..., 4)`` xyxy boxes to ``[0, W] x [0, H]`` (returns a copy)."""
    w, h = size_wh
    box = np.array(box, dtype=np.float64)
    box[..., 0::2] = np.clip(box[..., 0::2], 0, w)
    box[..., 1::2] = np.clip(box[..., 1::2], 0, h)
    return box


def is_valid_xyxy(box: np.ndarray) -> np.ndarray:
    """True where the box is finite with x1 < x2 and y1 < y2."""
    box = np.asarray(box)
    finite = np.all(np.isfinite(box), axis=-1)
    with np.errstate(invalid="ignore"):
        return finite & np.all(box[..., :2] < box[..., 2:], axis=-1)


def rasterize_xyxy(box: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Integer cell range ``[x1, x2) x [y1, y2)`` covered by a continuous xyxy box.

    Same rule as the official ``bbox_rasterize``: floor the start, floor(end + 1 - eps) the end.
    """
    box = np.array(box, dtype=np.float64)
    box[..., 2:] += 1.0 - eps
    return np.floor(box).astype(np.int64)


def enlarge_to_min_size(box_xyxy: np.ndarray, min_size: float) -> np.ndarray:
    """Grow width/height to at least ``min_size`` pixels around the box centre."""
    box = np.asarray(box_xyxy, dtype=np.float64)
    center = (box[..., :2] + box[..., 2:]) * 0.5
    wh = np.maximum(box[..., 2:] - box[..., :2], min_size)
    return np.concatenate([center - wh / 2, center + wh / 2], axis=-1)


def box_overlaps_aligned(
    boxes1: torch.Tensor, boxes2: torch.Tensor, mode: str = "iou", eps: float = 1e-6
) -> torch.Tensor:
    """IoU (``mode="iou"``) or GIoU (``mode="giou"``) of matching pairs of xyxy boxes, ``(N, 4), (N, 4) -> (N,)``.

    Same arithmetic as mmdetection's ``bbox_overlaps(..., is_aligned=True)`` used by the official code.
    """
    if mode not in ("iou", "giou"):
        raise ValueError(f"mode must be 'iou' or 'giou', got {mode!r}")
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    wh = (torch.minimum(boxes1[:, 2:], boxes2[:, 2:]) - torch.maximum(boxes1[:, :2], boxes2[:, :2])).clamp(
        min=0
    )
    overlap = wh[:, 0] * wh[:, 1]
    eps_t = boxes1.new_tensor([eps])
    union = torch.maximum(area1 + area2 - overlap, eps_t)
    iou = overlap / union
    if mode == "iou":
        return iou
    enclose = (
        torch.maximum(boxes1[:, 2:], boxes2[:, 2:]) - torch.minimum(boxes1[:, :2], boxes2[:, :2])
    ).clamp(min=0)
    enclose_area = torch.maximum(enclose[:, 0] * enclose[:, 1], eps_t)
    return iou - (enclose_area - union) / enclose_area
