"""Golden fixture of the official LoRAT submission writers and box rasteriser, run unmodified (by hand).

    python tools/make_submission_golden.py --reference /path/to/LitingLin/LoRAT \\
        --devkit /path/to/SilvioGiancola/TrackingNet-devkit --out tests/fixtures/protocols

The official GOT-10k and TrackingNet test handlers (``external_adaptors/got10k.py``,
``trackingnet.py``, with ``bbox_rasterize: true`` in the LoRAT configs) rasterise the tracker's
in-memory float boxes with ``bbox_rasterize`` and write them with ``GOT10kEvaluationToolFileWriter`` /
``TrackingNetResultFileWriter``. This tool feeds them random ``x, y, w, h`` float boxes (converted with
``bbox_xywh_to_xyxy``), many of them within 1e-4 of a pixel edge where rounding to 4 decimals first
would move the rasterised box by a pixel, and saves to ``submission.npz``:

* ``boxes/<seq>``: the input float boxes, ``times/<seq>``: per-frame seconds;
* ``rasterized/<seq>``: the official rasterised ``x, y, w, h`` boxes (``bbox_rasterize`` +
  ``bbox_xyxy_to_xywh``);
* ``trackingnet/<seq>``: the bytes of ``<seq>.txt`` in the official TrackingNet writer's zip;
* ``devkit/example_names``: the member names of the TrackingNet devkit's example submission
  ``dummy_subm.zip`` (its layout), when ``--devkit`` is given.

Nothing is stubbed or copied.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import numpy as np
from make_protocol_cases import parse_reference_args

SEQUENCES = ("seqA", "seqB", "seqC")


def edge_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Float boxes; in most of them an edge lies within 1e-4 of a pixel boundary or of ``k + 1e-4``."""
    x1 = rng.uniform(0, 600, (n, 2))
    size = rng.uniform(0.5, 120, (n, 2))
    near = rng.random((n, 4)) < 0.6
    jitter = rng.uniform(-1.5e-4, 1.5e-4, (n, 4))
    base = np.floor(np.concatenate([x1, x1 + size], axis=1)) + rng.choice([0.0, 1e-4], (n, 4))
    xyxy = np.concatenate([x1, x1 + size], axis=1)
    xyxy = np.where(near, base + jitter, xyxy)
    xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2] + 1e-3)
    return np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)


def main() -> None:
    def extra(parser):
        parser.add_argument("--devkit", type=Path, default=None, help="checkout of the TrackingNet devkit")

    args = parse_reference_args(__doc__, "trackit", "LitingLin/LoRAT", extra)
    from trackit.core.operator.numpy.bbox.format import bbox_xywh_to_xyxy, bbox_xyxy_to_xywh
    from trackit.core.operator.numpy.bbox.rasterize import bbox_rasterize
    from trackit.data.components.result_collector.handler.external_adaptors.trackingnet import (
        TrackingNetResultFileWriter,
    )

    rng = np.random.default_rng(197)
    out: dict[str, np.ndarray] = {"meta/source": np.asarray(args.source)}
    work = Path(tempfile.mkdtemp(prefix="submission_golden_"))
    writer = TrackingNetResultFileWriter(str(work), "trackingnet")
    for i, name in enumerate(SEQUENCES):
        boxes = edge_boxes(rng, 400 + 100 * i)
        rasterized = bbox_xyxy_to_xywh(bbox_rasterize(bbox_xywh_to_xyxy(boxes)))
        writer.write("golden", None, name, rasterized)
        out[f"boxes/{name}"] = boxes
        out[f"times/{name}"] = rng.uniform(0.001, 0.05, len(boxes))
        out[f"rasterized/{name}"] = rasterized.astype(np.float64)
    writer.close()
    with zipfile.ZipFile(work / "trackingnet.zip") as archive:
        for name in SEQUENCES:
            out[f"trackingnet/{name}"] = np.asarray(archive.read(f"golden/{name}/{name}.txt").decode())
    if args.devkit is not None:
        import subprocess

        example = (
            subprocess.run(
                ["git", "-C", str(args.devkit), "show", "HEAD:dummy_subm.zip"],
                capture_output=True,
                check=False,
            ).stdout
            or (args.devkit / "dummy_subm.zip").read_bytes()
        )
        (work / "dummy_subm.zip").write_bytes(example)
        with zipfile.ZipFile(work / "dummy_subm.zip") as archive:
            out["devkit/example_names"] = np.asarray(archive.namelist())
    np.savez_compressed(args.out / "submission.npz", **out)
    print(f"wrote {args.out / 'submission.npz'} ({args.source})")


if __name__ == "__main__":
    main()
