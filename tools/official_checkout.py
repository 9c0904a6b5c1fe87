"""Shared command line of the golden-fixture tools: ``--official CHECKOUT --out FOLDER``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(doc: str) -> argparse.Namespace:
    """Parse ``--official`` (a LitingLin/LoRAT checkout, put first on ``sys.path``) and ``--out``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of github.com/LitingLin/LoRAT")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/golden"))
    args = parser.parse_args()
    if not (args.official / "trackit").is_dir():
        parser.error(
            f"--official {args.official}: no trackit/ package there (expected a LitingLin/LoRAT checkout)"
        )
    sys.path.insert(0, str(args.official))
    args.out.mkdir(parents=True, exist_ok=True)
    return args
