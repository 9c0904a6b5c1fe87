"""Benchmark metrics: the arithmetic shared by the evaluation protocols, pytracking's OPE rules and GOT-10k.

Which rules score a benchmark is chosen by name in :mod:`.protocols` (``lorat``, ``pytracking``,
``got10k``, ``lasot-toolkit``, ``otb-toolkit``). This module holds

* the IoU / centre-error arithmetic all the OPE references share (pixel convention: ``x2 = x + w - 1``
  for the intersection, ``w * h`` areas, centre ``x + (w - 1) / 2``) and the threshold sets;
* **pytracking's** OPE rules, exactly as ``pytracking/analysis/extract_results.py``
  (``calc_seq_err_robust`` + ``extract_results`` with its default ``exclude_invalid_frames=False``,
  and ``plot_results.get_auc_curve`` / ``get_prec_curve``): :func:`ope_sequence_errors`,
  :func:`ope_sequence_curves`. In short: NaN ground truth is refused except on UAV; NaN or
  negative-size predictions are refused; a zero-size prediction takes the previous one; results are
  cut / zero-padded to the ground truth's length (LaSOT: shorter results are refused); the first
  prediction is replaced by the ground truth; a frame is *valid* when all four ground-truth values are
  ``> 0`` (a box touching the left or top border is not scored) and, where visibility flags are
  given, the target is visible; invalid frames get overlap ``-1``, centre error ``inf`` (UAV: ``-1``)
  and normalised centre error ``-1`` (a success!), except that LaSOT's invisible frames get ``inf``
  for both centre errors; each curve is divided by the sequence length (float32, as pytracking);
* :func:`ope_dataset_metrics`: dataset curves as the mean of the per-sequence curves, AUC = mean of
  the success curve, precision / normalised precision = the curves at 20 px / 0.2;
* the **GOT-10k** toolkit's rules (``got10k`` PyPI package, ``ExperimentGOT10k.report``): IoU from
  ``rect_iou`` with both boxes clipped to the image, first frame excluded, only frames with
  ``cover > 0``; AO / SR are means over the concatenated frames of all sequences.

All boxes are ``x, y, w, h`` in pixels. Scores are fractions in ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# ``torch.arange(0.0, 1.0 + 0.05, 0.05, dtype=torch.float64)`` exactly as pytracking builds it (its
# float rounding differs from ``np.linspace`` at 0.65 and 0.75, which matters for IoUs equal to them).
OVERLAP_THRESHOLDS = np.array(
    [
        0.0, 0.05, 0.1, 0.15000000000000002, 0.2, 0.25, 0.30000000000000004, 0.35000000000000003,
        0.4, 0.45, 0.5, 0.55, 0.6000000000000001, 0.6500000000000001, 0.7000000000000001,
        0.7500000000000001, 0.8, 0.8500000000000001, 0.9, 0.9500000000000001, 1.0,
    ],
    dtype=np.float64,
)  # fmt: skip
# ``np.linspace(0, 1, 21)``: the official LoRAT handler's thresholds, and ``0:0.05:1`` as GNU Octave
# evaluates it (``k * 0.05``) for the LaSOT / OTB toolkits.
LINSPACE_OVERLAP_THRESHOLDS = np.linspace(0, 1, 21, dtype=np.float64)
CENTER_THRESHOLDS = np.arange(0, 51, dtype=np.float64)  # pixels
NORM_CENTER_THRESHOLDS = np.arange(0, 51, dtype=np.float64) / 100.0  # fraction of the gt size
PRECISION_INDEX = 20  # 20 px / 0.2
GOT10K_THRESHOLDS = np.linspace(0, 1, 101)


def _as_boxes(boxes: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 4:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{what}: expected an (N, 4) array of x,y,w,h boxes, got shape {arr.shape}")
    return arr


def iou_overlap(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of matching ``(N, 4)`` xywh pixel boxes, pytracking's ``calc_iou_overlap`` arithmetic.

    Intersection uses inclusive pixel corners (``x + w - 1``, then ``+ 1``); areas are ``w * h``.
    Pairs with a zero union give NaN.
    """
    pred = _as_boxes(pred, "pred")
    gt = _as_boxes(gt, "gt")
    with np.errstate(invalid="ignore", divide="ignore"):
        tl = np.maximum(pred[:, :2], gt[:, :2])
        br = np.minimum(pred[:, :2] + pred[:, 2:] - 1.0, gt[:, :2] + gt[:, 2:] - 1.0)
        size = np.clip(br - tl + 1.0, 0, None)
        intersection = size.prod(axis=1)
        union = pred[:, 2:].prod(axis=1) + gt[:, 2:].prod(axis=1) - intersection
        return intersection / union


def center_error(pred: np.ndarray, gt: np.ndarray, normalized: bool = False) -> np.ndarray:
    """Centre distance of matching ``(N, 4)`` xywh boxes (pixels; or in gt-size units if ``normalized``).

    Centre = ``xy + (wh - 1) / 2`` (pytracking's ``calc_err_center``, the toolkits' ``center``).
    """
    pred = _as_boxes(pred, "pred")
    gt = _as_boxes(gt, "gt")
    with np.errstate(invalid="ignore", divide="ignore"):
        pred_center = pred[:, :2] + 0.5 * (pred[:, 2:] - 1.0)
        gt_center = gt[:, :2] + 0.5 * (gt[:, 2:] - 1.0)
        if normalized:
            pred_center = pred_center / gt[:, 2:]
            gt_center = gt_center / gt[:, 2:]
        return np.sqrt(((pred_center - gt_center) ** 2).sum(axis=1))


@dataclass
class OPESequenceErrors:
    """Per-frame errors of one sequence (pytracking's ``calc_seq_err_robust`` outputs).

    ``overlap``: IoU, ``-1`` on invalid frames. ``center``: pixels, ``inf`` on invalid frames.
    ``center_norm``: gt-size units, ``-1`` on invalid frames (``inf`` on invisible LaSOT frames).
    ``valid``: bool mask of frames with a usable ground truth.
    """

    overlap: np.ndarray
    center: np.ndarray
    center_norm: np.ndarray
    valid: np.ndarray


def _check_predictions(pred: np.ndarray, name: str) -> None:
    if np.any(np.isnan(pred)):
        bad = int(np.nonzero(np.any(np.isnan(pred), axis=1))[0][0])
        raise ValueError(f"{name}: invalid results, NaN in the predicted box of frame {bad}")
    if np.any(pred[:, 2:] < 0):
        bad = int(np.nonzero(np.any(pred[:, 2:] < 0, axis=1))[0][0])
        raise ValueError(f"{name}: invalid results, negative width/height at frame {bad}")


def ope_sequence_errors(
    pred: np.ndarray,
    gt: np.ndarray,
    dataset: str = "",
    target_visible: np.ndarray | None = None,
    name: str = "sequence",
) -> OPESequenceErrors:
    """Per-frame OPE errors for one sequence, exactly pytracking's ``calc_seq_err_robust``.

    Args:
        pred: ``(M, 4)`` predicted xywh boxes, in the result file's coordinates.
        gt: ``(N, 4)`` ground-truth xywh boxes, in the ground-truth file's coordinates.
        dataset: pytracking's dataset name; ``"lasot"`` and ``"uav"`` get its special cases.
        target_visible: optional ``(N,)`` bool visibility flags (pytracking gives them for LaSOT and
            LaSOT-extension: not fully occluded and not out of view). Required for ``"lasot"``.
        name: sequence name used in error messages.

    Raises:
        ValueError: where pytracking raises: NaN / negative-size predictions, NaN ground truth
            (except ``"uav"``), LaSOT results shorter than the ground truth.
    """
    pred = _as_boxes(pred, f"{name}: predictions").copy()
    gt = _as_boxes(gt, f"{name}: ground truth")
    if len(gt) == 0:
        raise ValueError(f"{name}: empty ground truth")
    _check_predictions(pred, name)
    gt_unknown = np.any(np.isnan(gt), axis=1)
    if gt_unknown.any() and dataset != "uav":
        raise ValueError(
            f"{name}: NaN in the ground truth (frame {int(np.argmax(gt_unknown))}); pytracking accepts "
            "NaN ground truth only on UAV123"
        )

    # Zero-size predictions take the previous (already repaired) prediction.
    for i in range(1, min(len(pred), len(gt))):
        if np.any(pred[i, 2:] == 0.0) and not gt_unknown[i]:
            pred[i] = pred[i - 1]

    if len(pred) != len(gt):
        if len(pred) > len(gt):
            pred = pred[: len(gt)]
        elif dataset == "lasot":
            raise ValueError(
                f"{name}: {len(pred)} result lines for {len(gt)} frames (pytracking refuses it on LaSOT)"
            )
        else:
            pred = np.concatenate([pred, np.zeros((len(gt) - len(pred), 4))], axis=0)

    pred[0] = gt[0]

    with np.errstate(invalid="ignore"):
        valid = np.sum(gt > 0.0, axis=1) == 4
    if target_visible is not None:
        target_visible = np.asarray(target_visible, dtype=bool).reshape(-1)
        if len(target_visible) != len(gt):
            raise ValueError(f"{name}: {len(target_visible)} visibility flags for {len(gt)} frames")
        valid &= target_visible
    elif dataset == "lasot":
        raise ValueError(f"{name}: LaSOT evaluation needs target visibility flags")

    err_center = center_error(pred, gt)
    err_center_norm = center_error(pred, gt, normalized=True)
    err_overlap = iou_overlap(pred, gt)

    err_center[~valid] = -1.0 if dataset == "uav" else np.inf
    err_center_norm[~valid] = -1.0
    err_overlap[~valid] = -1.0
    if dataset == "lasot":
        err_center_norm[~target_visible] = np.inf
        err_center[~target_visible] = np.inf

    if np.any(np.isnan(err_overlap)):
        raise ValueError(f"{name}: NaN in computed overlaps")
    return OPESequenceErrors(err_overlap, err_center, err_center_norm, valid)


@dataclass
class OPESequenceCurves:
    """Per-sequence OPE curves (fractions in [0, 1]) over the thresholds of the protocol that made them.

    ``success``: over ``overlap_thresholds`` (21 values); ``precision``: over
    :data:`CENTER_THRESHOLDS` (px); ``norm_precision``: over :data:`NORM_CENTER_THRESHOLDS`, or None
    where the protocol has none (OTB toolkit); ``avg_overlap``: mean IoU on valid frames (NaN if
    none); ``num_frames`` / ``num_valid``: frame counts.
    """

    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray | None
    avg_overlap: float
    num_frames: int
    num_valid: int

    @property
    def success_auc(self) -> float:
        """Area under this sequence's success curve (mean over the 21 thresholds)."""
        return float(np.mean(self.success))

    def scalars(self) -> dict[str, float]:
        """``{"success_auc", "precision", "norm_precision" (when there is one), "avg_overlap"}``."""
        out = {"success_auc": self.success_auc, "precision": float(self.precision[PRECISION_INDEX])}
        if self.norm_precision is not None:
            out["norm_precision"] = float(self.norm_precision[PRECISION_INDEX])
        out["avg_overlap"] = float(self.avg_overlap)
        return out


def success_counts(errors: np.ndarray, thresholds: np.ndarray, above: bool) -> np.ndarray:
    """Per-threshold number of frames with ``error > thr`` (``above``) or ``error <= thr``; NaN never counts."""
    errors = np.asarray(errors, dtype=np.float64).reshape(-1, 1)
    with np.errstate(invalid="ignore"):
        hits = errors > thresholds[None, :] if above else errors <= thresholds[None, :]
    return hits.sum(axis=0)


def ope_sequence_curves(
    pred: np.ndarray,
    gt: np.ndarray,
    dataset: str = "",
    target_visible: np.ndarray | None = None,
    exclude_invalid_frames: bool = False,
    name: str = "sequence",
) -> OPESequenceCurves:
    """Success / precision / normalised-precision curves of one sequence, as pytracking's ``extract_results``.

    Args: as :func:`ope_sequence_errors`; ``exclude_invalid_frames`` divides by the number of valid
    frames instead of the sequence length (pytracking's option, default off). Curves are float32
    quotients, as pytracking stores them.

    Raises:
        ValueError: as :func:`ope_sequence_errors`, or no frame to divide by.
    """
    errors = ope_sequence_errors(pred, gt, dataset=dataset, target_visible=target_visible, name=name)
    num_frames = len(errors.overlap)
    num_valid = int(errors.valid.sum())
    length = np.float32(num_valid if exclude_invalid_frames else num_frames)
    if length <= 0:
        raise ValueError(f"{name}: no valid frame to evaluate")

    def curve(err: np.ndarray, thresholds: np.ndarray, above: bool) -> np.ndarray:
        return (success_counts(err, thresholds, above).astype(np.float32) / length).astype(np.float64)

    avg_overlap = float(errors.overlap[errors.valid].mean()) if num_valid else float("nan")
    return OPESequenceCurves(
        curve(errors.overlap, OVERLAP_THRESHOLDS, True),
        curve(errors.center, CENTER_THRESHOLDS, False),
        curve(errors.center_norm, NORM_CENTER_THRESHOLDS, False),
        avg_overlap,
        num_frames,
        num_valid,
    )


def _mean_curve(rows: list[np.ndarray], drop_empty: bool) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float64)
    if drop_empty:  # the MATLAB toolkits' plotDrawSave: ``aa = aa(sum(aa, 2) > eps, :)``
        matrix = matrix[matrix.sum(axis=1) > np.finfo(np.float64).eps]
    if len(matrix) == 0:
        return np.full(np.asarray(rows).shape[1], np.nan)
    return matrix.mean(axis=0)


def ope_dataset_metrics(curves: Mapping[str, OPESequenceCurves], drop_empty: bool = False) -> dict:
    """Dataset-level OPE scores from per-sequence curves (mean curve over sequences).

    ``drop_empty`` leaves out sequences whose curve is all zero before averaging, separately for each
    curve, as the MATLAB LaSOT / OTB toolkits do.

    Returns ``{"success_auc", "precision", "norm_precision" (None without normalised curves), "op50",
    "op75", "num_sequences", "success_curve", "precision_curve", "norm_precision_curve"}`` (fractions
    in [0, 1]; curves as lists over the protocol's thresholds).
    """
    if not curves:
        raise ValueError("no sequence to compute OPE metrics on")
    success = _mean_curve([c.success for c in curves.values()], drop_empty)
    precision = _mean_curve([c.precision for c in curves.values()], drop_empty)
    has_norm = all(c.norm_precision is not None for c in curves.values())
    norm_precision = (
        _mean_curve([c.norm_precision for c in curves.values()], drop_empty) if has_norm else None
    )
    return {
        "success_auc": float(success.mean()),
        "precision": float(precision[PRECISION_INDEX]),
        "norm_precision": float(norm_precision[PRECISION_INDEX]) if has_norm else None,
        "op50": float(success[10]),  # IoU > 0.5
        "op75": float(success[15]),  # IoU > 0.75
        "num_sequences": len(curves),
        "success_curve": success.tolist(),
        "precision_curve": precision.tolist(),
        "norm_precision_curve": norm_precision.tolist() if has_norm else None,
    }


def got10k_rect_iou(pred: np.ndarray, gt: np.ndarray, bound: tuple[float, float] | None = None) -> np.ndarray:
    """IoU of matching ``(N, 4)`` xywh boxes, the got10k toolkit's ``rect_iou`` arithmetic.

    With ``bound = (W, H)`` (image size in pixels) both boxes are first clipped to the image, x/y
    first and then w/h against the clipped x/y, as the toolkit does. Does not modify its inputs.
    """
    boxes = [_as_boxes(pred, "pred").copy(), _as_boxes(gt, "gt").copy()]
    if boxes[0].shape != boxes[1].shape:
        raise ValueError(f"pred and gt shapes differ: {boxes[0].shape} vs {boxes[1].shape}")
    if bound is not None:
        for rects in boxes:
            rects[:, 0] = np.clip(rects[:, 0], 0, bound[0])
            rects[:, 1] = np.clip(rects[:, 1], 0, bound[1])
            rects[:, 2] = np.clip(rects[:, 2], 0, bound[0] - rects[:, 0])
            rects[:, 3] = np.clip(rects[:, 3], 0, bound[1] - rects[:, 1])
    r1, r2 = boxes
    x1 = np.maximum(r1[:, 0], r2[:, 0])
    y1 = np.maximum(r1[:, 1], r2[:, 1])
    x2 = np.minimum(r1[:, 0] + r1[:, 2], r2[:, 0] + r2[:, 2])
    y2 = np.minimum(r1[:, 1] + r1[:, 3], r2[:, 1] + r2[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = r1[:, 2] * r1[:, 3] + r2[:, 2] * r2[:, 3] - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def got10k_sequence_ious(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    resolution: tuple[float, float],
    name: str = "sequence",
) -> np.ndarray:
    """IoUs the GOT-10k toolkit averages for one sequence: frames 1.. with ``visible`` (cover > 0).

    Args:
        pred: ``(N, 4)`` predicted xywh pixel boxes.
        gt: ``(N, 4)`` ground-truth xywh pixel boxes.
        visible: ``(N,)`` bool, ``cover > 0`` (target visible). Frames with NaN gt are also dropped
            (the toolkit would return NaN).
        resolution: image ``(W, H)`` in pixels, used to clip the boxes.
        name: sequence name for error messages.

    Raises:
        ValueError: shape mismatch or non-finite predictions.
    """
    pred = _as_boxes(pred, f"{name}: predictions")
    gt = _as_boxes(gt, f"{name}: ground truth")
    if pred.shape != gt.shape:
        raise ValueError(f"{name}: {len(pred)} predicted boxes for {len(gt)} frames")
    visible = np.asarray(visible, dtype=bool).reshape(-1)
    if len(visible) != len(gt):
        raise ValueError(f"{name}: {len(visible)} visibility flags for {len(gt)} frames")
    if not np.all(np.isfinite(pred[1:])):
        raise ValueError(f"{name}: invalid results, non-finite predicted box")
    ious = got10k_rect_iou(pred[1:], gt[1:], bound=resolution)
    keep = visible[1:] & np.all(np.isfinite(gt[1:]), axis=1)
    return ious[keep]


def got10k_metrics(ious: Mapping[str, np.ndarray]) -> dict:
    """GOT-10k AO / SR0.5 / SR0.75 from per-sequence IoU arrays (see :func:`got10k_sequence_ious`).

    Overall numbers are means over all frames of all sequences concatenated (as the toolkit).
    Returns ``{"ao", "sr50", "sr75", "num_sequences", "num_frames", "success_curve"}`` with the
    success curve over 101 thresholds ``linspace(0, 1, 101)`` (``iou > thr``).
    """
    if not ious:
        raise ValueError("no sequence to compute GOT-10k metrics on")
    all_ious = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in ious.values()])
    if len(all_ious) == 0:
        raise ValueError("no visible frame to compute GOT-10k metrics on")
    return {
        "ao": float(np.mean(all_ious)),
        "sr50": float(np.mean(all_ious > 0.5)),
        "sr75": float(np.mean(all_ious > 0.75)),
        "num_sequences": len(ious),
        "num_frames": int(len(all_ious)),
        "success_curve": np.mean(all_ious[:, None] > GOT10K_THRESHOLDS[None, :], axis=0).tolist(),
    }


def got10k_sequence_scalars(ious: np.ndarray) -> dict[str, float]:
    """Per-sequence ``{"ao", "sr50", "sr75"}`` (NaN when the sequence has no visible frame)."""
    ious = np.asarray(ious, dtype=np.float64)
    if len(ious) == 0:
        return {"ao": float("nan"), "sr50": float("nan"), "sr75": float("nan")}
    return {"ao": float(ious.mean()), "sr50": float(np.mean(ious > 0.5)), "sr75": float(np.mean(ious > 0.75))}
