"""``lorat export --model PATH_OR_REPO --format {onnx,torch-export} --output DIR``: deployable graph.

Writes DIR/model.onnx (or DIR/model.pt2) of the merged model with a dynamic batch, DIR/lorat_export.json
(inputs, outputs, crop and post-processing settings), config.json, and preprocessor_config.json with the
image processor's code. The saved graph is run at batch 1 and 3 and compared with the eager model before
DIR appears.
"""

from __future__ import annotations

import argparse
import sys

FORMATS = ("onnx", "torch-export")
#: Packages of the ``export`` extra (a missing one gets a one-line hint).
EXPORT_PACKAGES = ("onnx", "onnxscript", "onnx_ir", "onnxruntime")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lorat export``."""
    parser = subparsers.add_parser(
        "export",
        help="export the merged model to ONNX or torch.export (dynamic batch)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model folder (full or adapter) or Hub repo id")
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx or torch-export")
    parser.add_argument("--output", required=True, help="output folder (must not exist or be empty)")
    parser.add_argument(
        "--fuse",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="export the inference-fused model: fused q/k/v, folded layer scales (default: --fuse)",
    )
    parser.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare the saved graph with the eager model at batch 1 and 3 (default: --verify)",
    )
    parser.add_argument(
        "--atol", type=float, default=1e-4, help="largest accepted difference from eager (default 1e-4)"
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it is not empty")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export and print where the graph went (and how close it is to the eager model)."""
    from ..exporting import check_output_dir, export_model
    from ..loading_utils import resolve_model_path

    if args.opset is not None and args.format != "onnx":
        raise ValueError("--opset applies to --format onnx only")
    if not args.atol > 0:
        raise ValueError(f"--atol must be positive, got {args.atol}")
    check_output_dir(args.output, args.overwrite)  # before loading the model
    resolve_model_path(args.model)
    try:
        result = export_model(
            args.model,
            args.output,
            format=args.format,
            fuse=args.fuse,
            overwrite=args.overwrite,
            verify=args.verify,
            atol=args.atol,
            opset=args.opset,
        )
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in EXPORT_PACKAGES:
            raise
        print(
            f"lorat export: error: --format {args.format} needs the package {exc.name!r}: "
            "pip install 'lorat[export]'",
            file=sys.stderr,
        )
        return 2
    print(f"wrote {result.model_file}")
    if result.max_abs_diff:
        diffs = ", ".join(f"{name} {value:.2g}" for name, value in result.max_abs_diff.items())
        print(f"verified at batch 1 and 3: max |export - eager| {diffs}")
    return 0
