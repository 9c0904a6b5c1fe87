"""`lorat` command line: ``lorat {track,evaluate,plot,package-submission,convert,export,push,demo,vot-server,vot-setup} ...``.

Each sub-command lives in ``modeling_lorat/commands/<name>.py`` exposing ``add_parser(subparsers)``
and ``run(args) -> int``. Building the parser imports every command module, so they keep heavy imports
(torch, transformers) inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

COMMANDS = {
    "track": "track",
    "evaluate": "evaluate",
    "plot": "plot",
    "package-submission": "submission",
    "convert": "convert",
    "export": "export",
    "push": "push",
    "demo": "demo",
    "vot-server": "vot",
    "vot-setup": "vot",
}


#: Sub-commands that run a model on the CPU and take ``--threads`` (see ``modeling_lorat.cpu_threads``).
THREADED_COMMANDS = ("track", "evaluate", "demo")
_RST = [
    (re.compile(r":[a-z]+:`~?([^`]+)`"), r"\1"),
    (re.compile(r"``([^`]+)``"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
]


def plain_text(text: str) -> str:
    """``text`` without reStructuredText markup (````code````, ```code```, ``:func:`name```)."""
    for pattern, replacement in _RST:
        text = pattern.sub(replacement, text)
    return text


class PlainHelpParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help and usage show docstring text without reStructuredText markup."""

    def format_help(self) -> str:
        return plain_text(super().format_help())

    def format_usage(self) -> str:
        return plain_text(super().format_usage())


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for the model (default: 1 for small models, else the free cores; "
        "OMP_NUM_THREADS is respected)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (sub-commands whose module is missing are left out)."""
    parser = PlainHelpParser(prog="lorat", description="LoRAT visual object tracker")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in dict.fromkeys(COMMANDS.values()):
        try:
            module = importlib.import_module(f"modeling_lorat.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"modeling_lorat.commands.{module_name}":
                raise
            continue
        module.add_parser(subparsers)
    for name in THREADED_COMMANDS:
        if name in subparsers.choices:
            _add_threads_option(subparsers.choices[name])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lorat`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in THREADED_COMMANDS and args.command != "demo":  # the demo passes it on
            from .cpu_threads import configure_threads

            configure_threads(args.threads, getattr(args, "model", None))
        return int(args.run(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"lorat {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
