"""`lorat convert`: official LoRAT checkpoint -> full or adapter checkpoint of this package."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lorat convert``."""
    parser = subparsers.add_parser(
        "convert",
        help="convert an official LoRAT checkpoint",
        description="Convert an official LoRAT checkpoint (github.com/LitingLin/LoRAT; .pth, .bin or "
        ".safetensors; pickles that would run code are refused) into this package's format. --form full "
        "writes a merged model.safetensors that loads without peft; --form adapter writes the peft adapter "
        "(LoRA, token types, head) with a config naming the DINOv2 backbone (--backbone, default the "
        "preset's facebook/dinov2-*), whose weights must equal the checkpoint's frozen weights.",
    )
    parser.add_argument("--original", required=True, help="official checkpoint (.safetensors/.pth/.bin)")
    parser.add_argument("--preset", required=True, help="variant, e.g. b-224 or g-378")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument(
        "--form", choices=("full", "adapter"), default="full", help="merged full model or peft adapter"
    )
    parser.add_argument(
        "--backbone", default=None, help="DINOv2 Hub id/folder for --form adapter (default: preset's)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --output if it exists and is not empty"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Convert and print where the checkpoint went."""
    from ..convert_lorat_original_to_hf import convert_checkpoint

    out = convert_checkpoint(
        args.original,
        args.output,
        preset=args.preset,
        form=args.form,
        backbone=args.backbone,
        overwrite=args.overwrite,
    )
    print(f"wrote {args.form} checkpoint to {out}")
    return 0
