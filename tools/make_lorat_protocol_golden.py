"""Golden fixture of the official LoRAT OPE metrics (the ``lorat`` protocol), run unmodified (by hand).

    python tools/make_lorat_protocol_golden.py --reference /path/to/LitingLin/LoRAT \\
        --out tests/fixtures/protocols

The official evaluation scores with the ``one_pass_evaluation_compatible`` result handler: per
sequence ``compute_one_pass_evaluation_metrics`` (``ope_metrics.py``, default ``stark_behavior=True``,
``exclude_invalid_frames=False``) with its ``ExternalToolkitCompatibilityHelper`` (LaSOT boxes shifted
to 1-based), then ``DatasetOPEResultsBuilder`` / ``DatasetOPEResults.get_mean`` for the dataset.

For every sequence of ``cases.npz`` (``tools/make_protocol_cases.py``; file coordinates) this tool
builds the handler's inputs as the official pipeline holds them: 0-based ``xyxy`` boxes
(``bbox_xywh_to_xyxy``; LaSOT's 1-based files shifted by -1 as the official loader does) and the
target-existence flags, under the official dataset names (``LaSOT``, ``LaSOT_Extension``,
``UAV123``, ``OTB100``). It saves the per-sequence curves, or an error flag where the official code
raises (predictions and ground truth of different lengths), and the dataset mean over the accepted
sequences. Nothing is stubbed or copied.
"""

from __future__ import annotations

import numpy as np
from make_protocol_cases import load_cases, parse_reference_args

OFFICIAL_NAMES = {"lasot": "LaSOT", "lasot_ext": "LaSOT_Extension", "uav": "UAV123", "otb": "OTB100"}
FILE_OFFSET = {"lasot": 1.0}  # the official loader reads LaSOT's 1-based files as 0-based pixels


def main() -> None:
    args = parse_reference_args(__doc__, "trackit", "LitingLin/LoRAT")
    from trackit.core.operator.numpy.bbox.format import bbox_xywh_to_xyxy
    from trackit.data.components.result_collector.handler.one_pass_evaluation_compatible.ope_metrics import (
        DatasetOPEResultsBuilder,
        compute_one_pass_evaluation_metrics,
    )
    from trackit.data.components.result_collector.handler.utils.compatibility import (
        ExternalToolkitCompatibilityHelper,
    )

    helper = ExternalToolkitCompatibilityHelper()
    cases = load_cases(args.out / "cases.npz")
    out: dict[str, np.ndarray] = {"meta/source": np.asarray(args.source)}
    for flavour, sequences in cases.items():
        builder = DatasetOPEResultsBuilder()
        names = []
        for i, case in enumerate(sequences):
            key = f"{flavour}/{i}"
            gt, pred = case["gt"].copy(), case["pred"].copy()
            gt[:, :2] -= FILE_OFFSET.get(flavour, 0.0)
            pred[:, :2] -= FILE_OFFSET.get(flavour, 0.0)
            try:
                metrics, _ = compute_one_pass_evaluation_metrics(
                    OFFICIAL_NAMES[flavour],
                    bbox_xywh_to_xyxy(pred),
                    bbox_xywh_to_xyxy(gt),
                    case["visible"].copy(),
                    np.full(len(pred), 0.01),
                    helper,
                )
            except Exception as exc:  # noqa: BLE001 - numpy broadcasting errors on length mismatch
                out[f"{key}/error"] = np.asarray(str(exc))
                continue
            builder.add_sequence(f"{flavour}-{i}", metrics)
            names.append(f"{flavour}-{i}")
            out[f"{key}/success"] = np.asarray(metrics.success_curve, dtype=np.float64)
            out[f"{key}/precision"] = np.asarray(metrics.precision_curve, dtype=np.float64)
            out[f"{key}/norm_precision"] = np.asarray(metrics.normalized_precision_curve, dtype=np.float64)
        mean = builder.build().sort_by_sequence_name().get_mean()
        out[f"{flavour}/mean/sequences"] = np.asarray(names)
        out[f"{flavour}/mean/success"] = np.asarray(mean.success_curve, dtype=np.float64)
        out[f"{flavour}/mean/precision"] = np.asarray(mean.precision_curve, dtype=np.float64)
        out[f"{flavour}/mean/norm_precision"] = np.asarray(mean.normalized_precision_curve, dtype=np.float64)
        out[f"{flavour}/mean/success_auc"] = np.asarray(mean.success_score)
        out[f"{flavour}/mean/precision_score"] = np.asarray(mean.precision_score)
        out[f"{flavour}/mean/norm_precision_score"] = np.asarray(mean.normalized_precision_score)
    np.savez_compressed(args.out / "lorat.npz", **out)
    print(f"wrote {args.out / 'lorat.npz'} ({args.source})")


if __name__ == "__main__":
    main()
