"""Random OPE inputs shared by the protocol golden tools (no reference code; run by hand).

    python tools/make_protocol_cases.py --out tests/fixtures/protocols

Writes ``cases.npz``: for each flavour (``lasot``, ``lasot_ext``, ``uav``, ``otb``) a handful of
sequences in FILE coordinates (the values of the ground-truth and result files a toolkit reads;
LaSOT's are 1-based). Keys ``<flavour>/<i>/gt``, ``/pred``, ``/visible`` and ``<flavour>/count``.

The sequences cover what makes the protocols differ: NaN ground truth (UAV style; one ``otb`` sequence too),
all-zero rows, boxes on the image border (x or y = 0, 1) and beyond it (negative), absent frames
(``visible`` False; LaSOT flavours), zero-area, negative-size and NaN predictions, whole-pixel ties
(IoU exactly 0.5 / 0.65 / 0.75 and one ulp above 0.65 / 0.75, centre errors of exactly 20 px,
normalised errors of exactly 0.2),
predictions longer and shorter than the ground truth, a first prediction that is not the ground
truth, and a sequence without any valid ground truth after its first frame. The golden tools feed
these to the reference code unmodified and save what it computes next to them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

FLAVOURS = ("lasot", "lasot_ext", "uav", "otb")
NUM_SEQUENCES = 9


def _track(rng: np.random.Generator, n: int, integer: bool) -> np.ndarray:
    """A random-walk ground-truth track of ``n`` boxes (x, y, w, h), inside a 320x240 image."""
    x, y = rng.uniform(30, 200), rng.uniform(30, 150)
    w, h = rng.uniform(12, 60), rng.uniform(12, 60)
    rows = []
    for _ in range(n):
        x += rng.normal(0, 3)
        y += rng.normal(0, 3)
        w = float(np.clip(w * np.exp(rng.normal(0, 0.04)), 6, 90))
        h = float(np.clip(h * np.exp(rng.normal(0, 0.04)), 6, 90))
        rows.append([x, y, w, h])
    boxes = np.asarray(rows)
    return np.round(boxes) if integer else np.round(boxes, 2)


def _ties(rng: np.random.Generator, gt: np.ndarray, pred: np.ndarray, frames: np.ndarray) -> None:
    """Whole-pixel ties: IoU exactly k/20 and centre errors of exactly 20 px / 0.2 gt sizes."""
    for f in frames:
        x, y = float(np.round(gt[f, 0])), float(np.round(gt[f, 1]))
        kind = rng.integers(0, 8)
        if kind < 3:  # gt 20x10, prediction 10 / 13 / 15 wide: IoU 0.5 / 0.65 / 0.75 (pixel convention)
            gt[f] = [x, y, 20.0, 10.0]
            pred[f] = [x, y, (10.0, 13.0, 15.0)[kind], 10.0]
        elif kind == 3:  # centre error of exactly 20 px
            dx, dy = ((20.0, 0.0), (12.0, 16.0), (0.0, -20.0))[rng.integers(0, 3)]
            gt[f] = np.round(gt[f])
            pred[f] = gt[f] + [dx, dy, 0.0, 0.0]
        elif kind == 4:  # normalised centre error of exactly 0.2 (the example, shifted)
            gt[f] = [x, y, 20.0, 40.0]
            pred[f] = [x + 4.0, y, 20.0, 40.0]
        elif kind == 5:  # exact copy: IoU 1
            gt[f] = np.round(gt[f])
            pred[f] = gt[f]
        else:  # IoU one ulp above 0.65 / 0.75: a success over linspace thresholds, not over pytracking's
            gt[f] = [x, y, 20.0, 10.0]
            pred[f] = [x, y, (13.000000000000009, 15.000000000000009)[kind - 6], 10.0]


def make_sequence(rng: np.random.Generator, flavour: str, index: int) -> dict[str, np.ndarray]:
    """One sequence of ``flavour``; ``index`` picks the special role of some sequences."""
    n = int(rng.integers(24, 48))
    integer_gt = flavour in ("lasot", "lasot_ext", "otb") or rng.random() < 0.5
    gt = _track(rng, n, integer_gt)
    pred = gt + rng.normal(0, 1, gt.shape) * np.array([4.0, 4.0, 3.0, 3.0]) * rng.uniform(0.3, 3.0)
    pred[:, 2:] = np.abs(pred[:, 2:]) + 1.0
    if rng.random() < 0.5:
        pred = np.round(pred, 2)
    lost = rng.random(n) < 0.12  # far-away failures
    pred[lost, :2] += rng.uniform(60, 150, (int(lost.sum()), 2))
    pred[0] = gt[0] + [rng.uniform(-3, 3), rng.uniform(-3, 3), 1.0, -1.0]  # not the ground truth
    _ties(rng, gt, pred, rng.choice(np.arange(1, n), size=6, replace=False))
    visible = np.ones(n, dtype=bool)

    frames = rng.permutation(np.arange(1, n))
    zero_rows, border, beyond, zero_pred = frames[:2], frames[2:5], frames[5:7], frames[7:10]
    gt[zero_rows] = 0.0
    for f in border:
        gt[f, rng.integers(0, 2)] = float(rng.integers(0, 2))  # x or y = 0 or 1
    for f in beyond:
        gt[f, rng.integers(0, 2)] = -float(rng.integers(1, 6))
    for f in zero_pred:
        pred[f, 2 + rng.integers(0, 2)] = 0.0
    if flavour == "uav":
        gt[frames[10:14]] = np.nan
    if flavour in ("lasot", "lasot_ext"):
        start = int(rng.integers(2, n - 6))
        visible[start : start + int(rng.integers(2, 6))] = False
        visible[frames[14:16]] = False
        gt[~visible & (rng.random(n) < 0.5)] = 0.0  # LaSOT marks some absent frames with zero boxes
    if index == 0 and flavour != "otb":  # first box on the border (pytracking: an invalid frame)
        gt[0, 0] = 0.0
    if index == 1:  # no valid ground truth after the first frame (still scored, not withheld)
        gt[1:] = 0.0
        if flavour in ("lasot", "lasot_ext"):
            visible[1:] = False
    if index == 2:  # results longer than the ground truth
        pred = np.concatenate([pred, pred[-3:] + 2.0])
    if index == 3:  # results shorter than the ground truth
        pred = pred[:-2]
    if index == 6:  # the example: NP@0.2 is a success in 1-based file coordinates only
        gt[n // 2], pred[n // 2] = [1.0, 50.0, 20.0, 40.0], [5.0, 50.0, 20.0, 40.0]
    if index == 5 and flavour == "otb":  # NaN ground truth outside UAV (pytracking refuses it)
        gt[frames[10:12]] = np.nan
    if index == 4:  # robustness cases that pytracking refuses: NaN and negative-size predictions
        pred[frames[16], 0] = np.nan
        pred[frames[17]] = np.nan
        pred[frames[18], 3] = -4.0
    return {"gt": gt, "pred": pred, "visible": visible}


def make_cases(seed: int = 14) -> dict[str, np.ndarray]:
    """All flavours' sequences as a flat ``npz``-ready dict."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for flavour in FLAVOURS:
        out[f"{flavour}/count"] = np.asarray(NUM_SEQUENCES)
        for i in range(NUM_SEQUENCES):
            for key, value in make_sequence(rng, flavour, i).items():
                out[f"{flavour}/{i}/{key}"] = value
    return out


def load_cases(path: str | Path) -> dict[str, list[dict[str, np.ndarray]]]:
    """``cases.npz`` -> ``{flavour: [{"gt", "pred", "visible"}, ...]}``."""
    with np.load(path) as data:
        return {
            flavour: [
                {key: data[f"{flavour}/{i}/{key}"] for key in ("gt", "pred", "visible")}
                for i in range(int(data[f"{flavour}/count"]))
            ]
            for flavour in FLAVOURS
        }


def parse_reference_args(doc: str, marker: str, what: str, extra=None) -> argparse.Namespace:
    """Command line of the protocol golden tools: ``--reference CHECKOUT --out FOLDER [--revision TEXT]``.

    ``marker`` is a path that must exist inside the checkout (``what`` names the repository in the
    error); the checkout is put first on ``sys.path``. ``--revision`` (default: ``git rev-parse HEAD``
    of the checkout, when it is a git work tree) is recorded in the fixture. ``extra(parser)`` may add
    arguments.
    """
    import subprocess
    import sys

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help=f"checkout of {what}")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/protocols"))
    parser.add_argument("--revision", default=None, help="commit of the checkout, recorded in the fixture")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    if not (args.reference / marker).exists():
        parser.error(f"--reference {args.reference}: no {marker} there (expected a checkout of {what})")
    if args.revision is None:
        probe = subprocess.run(
            ["git", "-C", str(args.reference), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        args.revision = probe.stdout.strip() if probe.returncode == 0 else "unknown"
    args.source = f"{what}@{args.revision}"
    sys.path.insert(0, str(args.reference.resolve()))
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/protocols"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "cases.npz", **make_cases())
    print(f"wrote {args.out / 'cases.npz'}")


if __name__ == "__main__":
    main()
