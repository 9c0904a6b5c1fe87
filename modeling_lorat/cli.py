"""`lorat` command line: ``lorat {track,evaluate,plot,package-submission,convert,push,demo} ...``.

Each sub-command lives in ``modeling_lorat/commands/<name>.py`` exposing ``add_parser(subparsers)``
and ``run(args) -> int``. Building the parser imports every command module, so they keep heavy imports
(torch, transformers) inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "track": "track",
    "evaluate": "evaluate",
    "plot": "plot",
    "package-submission": "submission",
    "convert": "convert",
    "push": "push",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (sub-commands whose module is missing are left out)."""
    parser = argparse.ArgumentParser(prog="lorat", description="LoRAT visual object tracker")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in dict.fromkeys(COMMANDS.values()):
        try:
            module = importlib.import_module(f"modeling_lorat.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"modeling_lorat.commands.{module_name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lorat`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"lorat {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
