"""Named evaluation protocols: each one reproduces one reference's numbers.

========================  ===========================================================================
``lorat`` (default)       the official LoRAT evaluation (LitingLin/LoRAT, result handler
                          ``one_pass_evaluation_compatible``, ``ope_metrics.py``): the numbers of the
                          LoRAT paper's LaSOT / LaSOT_ext / TNL2K / ... tables. GOT-10k and
                          TrackingNet test numbers come from the servers (``lorat package-submission``);
                          on GOT-10k val this protocol scores with the GOT-10k toolkit's rules.
``pytracking``            pytracking's ``analysis/extract_results.py`` (what most trackers since 2019
                          print: STARK, OSTrack, ...), see :mod:`.metrics`.
``got10k``                the GOT-10k toolkit (``got10k`` PyPI package, ``ExperimentGOT10k``): AO,
                          SR0.5, SR0.75 over all visible frames.
``lasot-toolkit``         the LaSOT evaluation toolkit (MATLAB, HengLan/LaSOT_Evaluation_Toolkit).
``otb-toolkit``           the OTB toolkit (MATLAB, Wu-Lim-Yang tracker_benchmark_v1.0); no normalised
                          precision.
========================  ===========================================================================

How they differ (OPE): which ground-truth frames count (``lorat``: ``w > 0`` and ``h > 0``, its
``stark_behavior``; the others: all four values ``> 0``, so a box touching the left or top border is
not scored), what an invalid or invisible frame counts as, how bad predictions are handled
(``lorat`` scores them as they are, pytracking refuses NaN / negative sizes and repairs zero sizes,
the MATLAB toolkits repair all of them with the previous box), whether the first prediction is
replaced by the ground truth (all but ``lorat``, whose runner writes the ground truth there anyway),
the overlap thresholds (pytracking's ``torch.arange`` vs ``linspace``: they differ at 0.65 / 0.75, which
decides exact ties) and the dataset mean (the MATLAB toolkits leave out sequences whose curve is all
zero).

Coordinates: the references read the toolkit files (LaSOT's are 1-based), except the official LoRAT
handler, which scores its in-memory 0-based boxes after shifting LaSOT's by +1 in ``xyxy``.
:attr:`EvaluationProtocol.coordinates` says which the functions expect; the runner converts.

The MATLAB toolkits were checked by running them unmodified under GNU Octave, which evaluates their
thresholds ``0:0.05:1`` as ``k * 0.05`` (= ``linspace``); MATLAB's colon operator may round a few of
them one ulp differently, which can only matter for an IoU exactly equal to a threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..box_ops import xywh_to_xyxy, xyxy_to_xywh
from . import metrics as M

DEFAULT_PROTOCOL = "lorat"


@dataclass(frozen=True)
class EvaluationProtocol:
    """One protocol: its name, what it reproduces, and its OPE rules (None for ``got10k``).

    ``sequence_curves(pred, gt, visible, dataset, name, exclude_invalid_frames)`` returns
    :class:`~.metrics.OPESequenceCurves`; ``coordinates`` is ``"file"`` (the values of the result and
    ground-truth files) or ``"memory"`` (the readers' boxes: LaSOT 0-based).
    """

    name: str
    reproduces: str
    reference: str
    coordinates: str = "file"
    overlap_thresholds: np.ndarray | None = None
    sequence_curves: Callable[..., M.OPESequenceCurves] | None = None
    drop_empty_sequences: bool = False

    def family(self, dataset: str) -> str:
        """``"got10k"`` (AO / SR) or ``"ope"`` (AUC / P / P_norm): what this protocol scores ``dataset`` with."""
        if self.sequence_curves is None or (self.name == "lorat" and canonical(dataset) == "got10k"):
            return "got10k"
        return "ope"

    def describe(self) -> dict[str, str]:
        """``{"name", "reproduces", "reference"}``, recorded in ``summary.json`` (the model card shows the name)."""
        return {"name": self.name, "reproduces": self.reproduces, "reference": self.reference}


def canonical(dataset: str | None) -> str:
    """Lower-case dataset name with ``-`` as ``_`` (``"LaSOT-ext"`` -> ``"lasot_ext"``)."""
    return (dataset or "").lower().replace("-", "_")


def _uav(dataset: str) -> bool:
    return canonical(dataset).startswith("uav")


# ------------------------------------------------------------------------------------- pytracking
PYTRACKING_VISIBILITY = ("lasot", "lasot_ext")  # its loaders with target_visible (+ AVisT)


def pytracking_sequence_curves(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray | None = None,
    dataset: str = "",
    name: str = "sequence",
    exclude_invalid_frames: bool = False,
) -> M.OPESequenceCurves:
    """pytracking's curves (file coordinates); ``visible`` is used where pytracking's loader has it."""
    ds = canonical(dataset)
    pyt_name = "uav" if _uav(ds) else ds
    use_visible = visible if ds in PYTRACKING_VISIBILITY else None
    return M.ope_sequence_curves(pred, gt, pyt_name, use_visible, exclude_invalid_frames, name)


def _mean_overlap(overlaps: np.ndarray) -> float:
    """Mean of the finite overlaps of the valid frames (NaN when there is none): ``avg_overlap``."""
    finite = overlaps[np.isfinite(overlaps)]
    return float(finite.mean()) if len(finite) else float("nan")


# ------------------------------------------------------------------------------------- official LoRAT
def official_dataset_name(dataset: str) -> str:
    """The official code's name for the special cases of its handler (``LaSOT``, ``LaSOT_Extension``, ``UAV``...)."""
    ds = canonical(dataset)
    names = {"lasot": "LaSOT", "lasot_ext": "LaSOT_Extension", "vasttrack": "VastTrack"}
    return names.get(ds, "UAV123" if _uav(ds) else ds)


def lorat_sequence_curves(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray | None = None,
    dataset: str = "",
    name: str = "sequence",
    exclude_invalid_frames: bool = False,
) -> M.OPESequenceCurves:
    """The official LoRAT handler's curves (``compute_one_pass_evaluation_metrics``, stark behaviour).

    Boxes in memory coordinates (LaSOT 0-based). LaSOT / VastTrack boxes are shifted by +1 in
    ``xyxy`` (its ``ExternalToolkitCompatibilityHelper``); a frame is valid when the ground truth has
    ``w > 0`` and ``h > 0`` (and, on LaSOT / LaSOT_ext / VastTrack, the target is visible); the
    predictions are scored as they are (no first-frame or bad-box replacement). Curves over
    ``linspace(0, 1, 21)``, float32 as the official code stores them.

    Raises:
        ValueError: predictions and ground truth of different lengths (the official code cannot
            broadcast them).
    """
    official = official_dataset_name(dataset)
    pred = M._as_boxes(pred, f"{name}: predictions")
    gt = M._as_boxes(gt, f"{name}: ground truth")
    if len(pred) != len(gt):
        raise ValueError(
            f"{name}: {len(pred)} result lines for {len(gt)} frames (the lorat protocol needs one per frame)"
        )
    visible = np.ones(len(gt), bool) if visible is None else np.asarray(visible, dtype=bool).reshape(-1)
    shift = 1.0 if official in ("LaSOT", "VastTrack") else 0.0  # to_1_based_indexing, applied to xyxy
    pred = xyxy_to_xywh(xywh_to_xyxy(pred) + shift) if shift else xyxy_to_xywh(xywh_to_xyxy(pred))
    gt = xyxy_to_xywh(xywh_to_xyxy(gt) + shift) if shift else xyxy_to_xywh(xywh_to_xyxy(gt))
    with np.errstate(invalid="ignore"):
        valid = np.sum(gt[:, 2:] > 0.0, axis=1) == 2
    if official in ("LaSOT", "LaSOT_Extension", "VastTrack"):
        valid &= visible
    center = M.center_error(pred, gt)
    center_norm = M.center_error(pred, gt, normalized=True)
    overlap = M.iou_overlap(pred, gt)
    center[~valid] = -1.0 if official.startswith("UAV") else np.inf
    center_norm[~valid] = -1.0
    overlap[~valid] = -1.0
    if official in ("LaSOT", "VastTrack"):
        center_norm[~visible] = np.inf
        center[~visible] = np.inf
    num_valid = int(valid.sum())
    length = num_valid if exclude_invalid_frames else len(gt)
    if length <= 0:
        raise ValueError(f"{name}: no valid frame to evaluate")

    def curve(err: np.ndarray, thresholds: np.ndarray, above: bool) -> np.ndarray:
        counts = M.success_counts(err, thresholds, above).astype(np.float64)
        return (counts / length).astype(np.float32).astype(np.float64)

    return M.OPESequenceCurves(
        curve(overlap, M.LINSPACE_OVERLAP_THRESHOLDS, True),
        curve(center, M.CENTER_THRESHOLDS, False),
        curve(center_norm, M.NORM_CENTER_THRESHOLDS, False),
        _mean_overlap(overlap[valid]),
        len(gt),
        num_valid,
    )


# ------------------------------------------------------------------------------------- MATLAB toolkits
def matlab_rect_int(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The toolkits' ``calcRectInt`` / ``calc_rect_int`` IoU; ``max`` / ``min`` ignore NaN as MATLAB's do."""
    with np.errstate(invalid="ignore", divide="ignore"):
        right_a, top_a = a[:, 0] + a[:, 2] - 1, a[:, 1] + a[:, 3] - 1
        right_b, top_b = b[:, 0] + b[:, 2] - 1, b[:, 1] + b[:, 3] - 1
        width = np.fmax(0, np.fmin(right_a, right_b) - np.fmax(a[:, 0], b[:, 0]) + 1)
        height = np.fmax(0, np.fmin(top_a, top_b) - np.fmax(a[:, 1], b[:, 1]) + 1)
        inter = width * height
        return inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)


OTB_MIN_FRAMES = 20  # splitSeqTRE's minNum: the OTB toolkit needs a start frame with 20 frames after it


def _matlab_toolkit_curves(pred, gt, visible, name, toolkit: str) -> M.OPESequenceCurves:
    pred = M._as_boxes(pred, f"{name}: predictions").copy()
    gt = M._as_boxes(gt, f"{name}: ground truth")
    n = len(gt)
    label = "the LaSOT toolkit" if toolkit == "lasot" else "the OTB toolkit"
    with np.errstate(invalid="ignore"):
        valid_gt = np.sum(gt > 0, axis=1) == 4
    # The OTB toolkit indexes the results with the ground truth's validity mask: fewer results pass
    # when every missing frame is invalid (they score -1), more results fail; the LaSOT toolkit cuts
    # longer results (monkey-17) and fails on shorter ones.
    short_ok = toolkit == "otb" and not valid_gt[len(pred) :].any()
    if (len(pred) < n and not short_ok) or (toolkit == "otb" and len(pred) > n):
        raise ValueError(f"{name}: {len(pred)} result lines for {n} frames ({label} needs one per frame)")
    if toolkit == "otb":
        with np.errstate(invalid="ignore"):
            if not np.all(gt[0] > 0):
                raise ValueError(f"{name}: {label} starts at the first frame whose ground truth is all > 0, "
                                 f"frame 0 is {gt[0].tolist()}")  # fmt: skip
        if n < OTB_MIN_FRAMES:
            raise ValueError(f"{name}: {n} frames; {label} needs at least {OTB_MIN_FRAMES}")
    num_results = min(len(pred), n)
    pred = np.concatenate([pred[:n], np.zeros((n - num_results, 4))])
    gt_known = ~np.any(np.isnan(gt), axis=1)
    for i in range(1, num_results):  # invalid results take the previous (already repaired) one
        r = pred[i]
        bad_size = bool(r[2] <= 0 or r[3] <= 0)
        nan = bool(np.any(np.isnan(r))) if toolkit == "lasot" else bool(np.all(np.isnan(r)))
        if (bad_size or nan) and gt_known[i]:
            pred[i] = pred[i - 1]
    pred[0] = gt[0]
    keep = np.ones(n, bool)
    if toolkit == "lasot" and visible is not None:  # absent frames are removed (and fail everything)
        keep = np.asarray(visible, dtype=bool).reshape(-1)
        if len(keep) != n:
            raise ValueError(f"{name}: {len(keep)} visibility flags for {n} frames")
    pred, kept_gt, valid = pred[keep], gt[keep], valid_gt[keep]
    overlap = -np.ones(len(kept_gt))
    overlap[valid] = matlab_rect_int(pred[valid], kept_gt[valid])
    length = n + np.finfo(np.float64).eps  # ``len_all + eps``

    def curve(err: np.ndarray, thresholds: np.ndarray, above: bool) -> np.ndarray:
        return M.success_counts(err, thresholds, above) / length

    errors = {}
    for normalized in (False, True) if toolkit == "lasot" else (False,):
        err = M.center_error(pred, kept_gt, normalized=normalized)
        err[~valid] = -1.0
        errors[normalized] = err
    return M.OPESequenceCurves(
        curve(overlap, M.LINSPACE_OVERLAP_THRESHOLDS, True),
        curve(errors[False], M.CENTER_THRESHOLDS, False),
        curve(errors[True], M.NORM_CENTER_THRESHOLDS, False) if True in errors else None,
        _mean_overlap(overlap[valid]),
        n,
        int(valid.sum()),
    )


def lasot_toolkit_sequence_curves(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray | None = None,
    dataset: str = "",
    name: str = "sequence",
    exclude_invalid_frames: bool = False,
) -> M.OPESequenceCurves:
    """The LaSOT toolkit's ``calc_seq_err_robust.m`` + ``eval_tracker.m`` curves (file coordinates).

    Longer results are cut, shorter ones refused; NaN / non-positive-size predictions take the
    previous one (where the ground truth has no NaN); the first is the ground truth; absent frames
    (``visible`` False) are removed but still counted in the length; frames whose ground truth is not
    all ``> 0`` get overlap ``-1`` and centre error ``-1`` (a precision success). Normalised precision
    is its ``norm_dst`` mode. ``exclude_invalid_frames`` is not an option of the toolkit.
    """
    if exclude_invalid_frames:
        raise ValueError("the LaSOT toolkit has no exclude_invalid_frames option")
    return _matlab_toolkit_curves(pred, gt, visible, name, "lasot")


def otb_toolkit_sequence_curves(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray | None = None,
    dataset: str = "",
    name: str = "sequence",
    exclude_invalid_frames: bool = False,
) -> M.OPESequenceCurves:
    """The OTB toolkit's ``calcSeqErrRobust.m`` + ``genPerfMat.m`` OPE curves (file coordinates).

    As the LaSOT toolkit, but no absent frames and no normalised precision; a prediction is repaired
    when its size is not positive or all four values are NaN; frames whose ground truth is not all
    ``> 0`` count as precision successes (centre error ``-1``). Results must have one box per frame
    (fewer pass only when every missing frame has an invalid ground truth, as the toolkit's indexing
    allows), the first ground-truth box must be all ``> 0`` and the sequence at least 20 frames long
    (the toolkit's OPE runs through its TRE split, which fails otherwise).
    """
    if exclude_invalid_frames:
        raise ValueError("the OTB toolkit has no exclude_invalid_frames option")
    return _matlab_toolkit_curves(pred, gt, None, name, "otb")


# ------------------------------------------------------------------------------------- registry
PROTOCOLS: dict[str, EvaluationProtocol] = {
    p.name: p
    for p in (
        EvaluationProtocol(
            "lorat",
            "the LoRAT paper's numbers: the official LoRAT evaluation",
            "LitingLin/LoRAT trackit/.../one_pass_evaluation_compatible/ope_metrics.py",
            "memory",
            M.LINSPACE_OVERLAP_THRESHOLDS,
            lorat_sequence_curves,
        ),
        EvaluationProtocol(
            "pytracking",
            "pytracking's analysis: print_results, plot_results",
            "visionml/pytracking pytracking/analysis/extract_results.py",
            "file",
            M.OVERLAP_THRESHOLDS,
            pytracking_sequence_curves,
        ),
        EvaluationProtocol(
            "got10k",
            "the GOT-10k toolkit and evaluation server: AO, SR",
            "got10k PyPI package 0.1.3, got10k/experiments/got10k.py",
        ),
        EvaluationProtocol(
            "lasot-toolkit",
            "the official LaSOT toolkit, MATLAB",
            "HengLan/LaSOT_Evaluation_Toolkit utils/eval_tracker.m, calc_seq_err_robust.m",
            "file",
            M.LINSPACE_OVERLAP_THRESHOLDS,
            lasot_toolkit_sequence_curves,
            drop_empty_sequences=True,
        ),
        EvaluationProtocol(
            "otb-toolkit",
            "the official OTB toolkit, MATLAB",
            "OTB tracker_benchmark_v1.0 genPerfMat.m, calcSeqErrRobust.m",
            "file",
            M.LINSPACE_OVERLAP_THRESHOLDS,
            otb_toolkit_sequence_curves,
            drop_empty_sequences=True,
        ),
    )
}


def get_protocol(name: str | None) -> EvaluationProtocol:
    """The protocol called ``name`` (default :data:`DEFAULT_PROTOCOL`); ``ValueError`` listing the valid ones."""
    key = (name or DEFAULT_PROTOCOL).lower().replace("_", "-")
    if key not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[key]


def protocol_dataset_metrics(protocol: EvaluationProtocol, curves: Mapping[str, M.OPESequenceCurves]) -> dict:
    """Dataset OPE scores of ``curves`` under ``protocol`` (see :func:`.metrics.ope_dataset_metrics`)."""
    if protocol.name == "lorat":  # the official DatasetOPEResults sorts sequences by name before the mean
        curves = {name: curves[name] for name in sorted(curves)}
    return M.ope_dataset_metrics(curves, drop_empty=protocol.drop_empty_sequences)
