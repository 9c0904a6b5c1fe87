"""``lorat plot``: success / precision plots and a metrics table comparing result folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from .evaluate import add_protocol_argument


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lorat plot``."""
    parser = subparsers.add_parser(
        "plot",
        help="compare result folders: success/precision plots and a metrics table",
        description="Score each result folder (run folder or folder of <seq>.txt files) against a benchmark and "
        "draw the comparison plots (PNG).",
    )
    parser.add_argument("result_dirs", nargs="+", metavar="RESULT_DIR", help="run or results folders")
    parser.add_argument("--dataset", required=True, help="benchmark name (lasot, got10k, ...)")
    parser.add_argument("--root", required=True, help="dataset root folder")
    parser.add_argument("--split", default=None, help="dataset split (default: the reader's default)")
    parser.add_argument("--output", default="plots", help="folder for the PNG files (default: plots)")
    parser.add_argument("--sequences", default=None, help="comma-separated subset of sequence names")
    add_protocol_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Plot; returns 0, or 1 when no folder could be scored."""
    from ..data import get_dataset
    from ..evaluation.plots import compare_result_dirs
    from .evaluate import format_table, select_sequences

    for directory in args.result_dirs:
        if not Path(directory).is_dir():
            raise FileNotFoundError(f"result folder not found: {directory}")
    dataset = args.dataset.lower().replace("-", "_")
    sequences = select_sequences(get_dataset(dataset, args.root, args.split), args.sequences)
    comparison = compare_result_dirs(
        args.result_dirs, sequences, dataset, args.output, protocol=args.protocol
    )
    print(f"protocol: {args.protocol}")
    print(format_table(comparison["results"]))
    for label, result in comparison["results"].items():
        for name, message in result["errors"].items():
            print(
                f"{label}: left out {message}"
                if message.startswith(name)
                else f"{label}: left out {name}: {message}"
            )
    for plot in [*comparison["plots"], comparison["attributes"]]:
        if plot:
            print(f"plot: {plot}")
    return 0 if comparison["plots"] else 1
