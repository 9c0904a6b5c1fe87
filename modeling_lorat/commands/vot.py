"""``lorat vot-server`` / ``lorat vot-setup``: run lorat in the VOT toolkit (``vot-toolkit``) over TraX.

``lorat vot-setup WORKSPACE --model PATH_OR_REPO`` adds a tracker entry to ``WORKSPACE/trackers.ini``
whose command is ``lorat vot-server --model ...``; the toolkit then runs it with
``vot evaluate --workspace WORKSPACE lorat``. Needs ``pip install "lorat[vot]"``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .track import DTYPES, _check_model_path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``vot-server`` and ``vot-setup`` sub-commands."""
    server = subparsers.add_parser(
        "vot-server",
        help="serve a model to the VOT toolkit over TraX (started by the toolkit, see vot-setup)",
        description="TraX tracker for the VOT toolkit: rectangle regions, confidence reported per frame. "
        "Started by the toolkit from trackers.ini; stdin/stdout carry the protocol.",
    )
    _add_model_arguments(server)
    server.set_defaults(run=run_server)

    setup = subparsers.add_parser(
        "vot-setup",
        help="write the VOT toolkit's trackers.ini entry for a model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    setup.add_argument(
        "workspace", metavar="WORKSPACE", help="VOT toolkit workspace folder (created if missing)"
    )
    _add_model_arguments(setup)
    setup.add_argument("--name", default="lorat", help="tracker identifier in the toolkit (default lorat)")
    setup.add_argument("--label", default=None, help="tracker label in reports (default: the name)")
    setup.add_argument(
        "--timeout",
        type=int,
        default=120,
        help="seconds the toolkit waits for each reply, model loading included",
    )
    setup.add_argument("--python", default=None, help="interpreter the toolkit runs (default: this one)")
    setup.add_argument("--overwrite", action="store_true", help="replace an entry of the same name")
    setup.set_defaults(run=run_setup)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or Hugging Face Hub repo id")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument(
        "--dtype", default="float32", choices=DTYPES, help="model precision (default float32)"
    )


def resolve_device(device: str | None, dtype: str) -> str:
    """``device`` (default cuda when available, else cpu) after checking it can run ``dtype``."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        kind = torch.device(device).type
    except RuntimeError as exc:
        raise ValueError(f"--device {device!r} is not a torch device: {exc}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device} requested but CUDA is not available")
    if dtype == "float16" and kind != "cuda":
        raise ValueError("--dtype float16 needs --device cuda (use float32 or bfloat16 on CPU)")
    return device


def run_server(args: argparse.Namespace) -> int:
    """Run ``lorat vot-server``: one TraX session; returns the exit code."""
    try:
        from ..vot.server import import_trax, serve

        import_trax()
    except ImportError as exc:
        print(f"lorat vot-server: error: {exc}", file=sys.stderr)
        return 2
    device = resolve_device(args.device, args.dtype)
    model, dtype = args.model, args.dtype

    def load_tracker():
        from transformers.utils import logging as hf_logging

        from ..tracking_lorat import LoratTracker

        hf_logging.disable_progress_bar()  # one line per update would fill the toolkit's log
        _check_model_path(model)
        return LoratTracker.from_pretrained(model, device=device, dtype=dtype)

    return serve(load_tracker)


def run_setup(args: argparse.Namespace) -> int:
    """Run ``lorat vot-setup``: write the trackers.ini entry; returns the exit code."""
    from ..vot.registry import check_tracker_name, server_command, tracker_entry, write_tracker_entry

    check_tracker_name(args.name)
    _check_model_path(args.model)
    resolve_device(args.device, args.dtype)
    model = Path(args.model).expanduser()
    model = os.path.abspath(model) if model.is_dir() else args.model  # the toolkit runs it in a temp folder
    command = server_command(model, device=args.device, dtype=args.dtype, python=args.python)
    entry = tracker_entry(args.name, command, label=args.label, timeout=args.timeout)
    workspace = Path(args.workspace).expanduser()
    if workspace.exists() and not workspace.is_dir():
        raise FileExistsError(f"workspace must be a folder, got a file: {workspace}")
    workspace.mkdir(parents=True, exist_ok=True)
    path = write_tracker_entry(workspace / "trackers.ini", args.name, entry, overwrite=args.overwrite)
    print(f"wrote tracker {args.name!r} to {path}")
    print(f"run it with: vot evaluate --workspace {workspace} {args.name}", file=sys.stderr)
    return 0
