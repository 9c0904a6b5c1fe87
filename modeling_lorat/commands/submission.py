"""``lorat package-submission``: zip GOT-10k / TrackingNet test results for the evaluation servers."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lorat package-submission``."""
    parser = subparsers.add_parser(
        "package-submission",
        help="zip test-set results for the GOT-10k / TrackingNet servers",
        description="Writes the archives as the servers' toolkits do. GOT-10k: a <seq>/ folder per sequence with "
        "<seq>_001.txt (%.3f) and <seq>_time.txt, as the got10k toolkit zips a deterministic tracker; TrackingNet: "
        "<seq>.txt (%.2f) at the zip root. With --root, every test sequence must have a result with one line per "
        "frame.",
    )
    parser.add_argument("--dataset", required=True, choices=["got10k", "trackingnet"])
    parser.add_argument("--results", required=True, help="run folder or results folder")
    parser.add_argument("--output", required=True, help="zip file to write")
    parser.add_argument("--root", default=None, help="dataset root, to check sequences and frame counts")
    parser.add_argument("--split", default="test", help="split checked with --root (default: test)")
    parser.add_argument(
        "--no-rasterize",
        action="store_true",
        help="keep sub-pixel boxes (default: whole-pixel boxes, as the official LoRAT submissions)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Package; returns 0."""
    from ..evaluation.submission import package_submission

    if not Path(args.results).is_dir():
        raise FileNotFoundError(f"results folder not found: {args.results}")
    sequences = None
    if args.root:
        from ..data import get_dataset

        sequences = list(get_dataset(args.dataset, args.root, args.split))
    path = package_submission(
        args.dataset, args.results, args.output, sequences, rasterize=not args.no_rasterize
    )
    print(f"wrote {path}")
    return 0
