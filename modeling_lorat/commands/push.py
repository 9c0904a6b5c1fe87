"""``lorat push``: export a checkpoint in its Hub form and upload it (safetensors only) with a model card.

Examples::

    lorat push --model runs/b224 --repo-id USER/lorat-b-224 --merged --eval-summary runs/lasot/summary.json
    lorat push --model runs/b224 --repo-id USER/lorat-b-224-adapter --adapter-only
    lorat push --model runs/b224 --repo-id USER/lorat-b-224 --merged --dry-run    # list files, upload nothing
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``lorat push``."""
    parser = subparsers.add_parser(
        "push",
        help="upload a checkpoint to the Hugging Face Hub (adapter or merged form, model card included)",
        description=(
            "Upload a LoRAT checkpoint folder to the Hub. Naming scheme: USER/lorat-{s,b,l,g}-{224,378} for "
            "merged checkpoints and USER/lorat-...-adapter for adapters. Only safetensors, json, md and the "
            "auto_map code files are uploaded; pickles (*.bin, *.pt, *.pth, *.ckpt) never are."
        ),
    )
    parser.add_argument("--model", required=True, help="checkpoint folder (full, merged or adapter)")
    parser.add_argument("--repo-id", required=True, help="target repository, e.g. USER/lorat-b-224")
    form = parser.add_mutually_exclusive_group()
    form.add_argument(
        "--adapter-only", action="store_true", help="export and push the adapter form (LoRA + head only)"
    )
    form.add_argument(
        "--merged", action="store_true", help="export and push the merged form (no peft needed)"
    )
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument(
        "--eval-summary",
        action="append",
        default=[],
        metavar="PATH",
        help="summary.json (or its run folder) from `lorat evaluate`; repeatable; (re)generates README.md",
    )
    parser.add_argument(
        "--base-model", help="DINOv2 id to record in an adapter's config (backbone_name_or_path)"
    )
    parser.add_argument(
        "--dataset", action="append", default=[], help="Hub id of a training dataset; repeatable"
    )
    parser.add_argument("--commit-message", default="Upload LoRAT checkpoint", help="upload commit message")
    parser.add_argument("--revision", help="branch to push to")
    parser.add_argument("--output-dir", help="keep the exported folder here (default: a temporary folder)")
    parser.add_argument("--dry-run", action="store_true", help="export and list the files; upload nothing")
    parser.set_defaults(run=run)


def _hub_cards() -> Any:
    """Import ``hub_cards`` (it lives at the repository root, next to ``modeling_lorat``)."""
    try:
        return importlib.import_module("hub_cards")
    except ModuleNotFoundError as exc:
        if exc.name != "hub_cards":
            raise
        root = Path(__file__).resolve().parents[2]
        if not (root / "hub_cards" / "__init__.py").is_file():
            raise ValueError(
                "`lorat push` needs the hub_cards package of the lorat repository (run from a source checkout)"
            ) from exc
        sys.path.insert(0, str(root))
        return importlib.import_module("hub_cards")


def _push(args: argparse.Namespace, folder: Path, hub: Any) -> int:
    if args.dry_run:
        print(f"would upload to {args.repo_id} from {folder}:")
        for name in hub.files_to_upload(folder):
            print(f"  {name}")
        return 0
    from ..loading_utils import hub_offline

    if hub_offline():
        raise ValueError(
            f"cannot upload to {args.repo_id}: HF_HUB_OFFLINE is set, nothing was uploaded "
            "(--dry-run lists the files, --output-dir keeps the exported folder)"
        )
    url = hub.push_to_hub(
        folder,
        args.repo_id,
        private=args.private,
        commit_message=args.commit_message,
        eval_summaries=args.eval_summary or None,
        revision=args.revision,
    )
    print(f"pushed {folder} to {url}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Export (``--adapter-only`` / ``--merged``) or take the folder as is, write the card, upload."""
    hub = _hub_cards()
    model = Path(args.model)
    if not model.is_dir():
        raise FileNotFoundError(f"model folder not found: {model}")
    form = "adapter" if args.adapter_only else "merged" if args.merged else None
    if form is None:
        if args.eval_summary or args.dataset:
            card = hub.render_model_card(
                model, args.repo_id, args.eval_summary, datasets=args.dataset or None
            )
            card.save(model / "README.md")
        return _push(args, model, hub)
    with tempfile.TemporaryDirectory(prefix="lorat-push-") as tmp:
        out_dir = Path(args.output_dir) if args.output_dir else Path(tmp)
        hub.export_checkpoint(
            model,
            out_dir,
            form,
            backbone_name_or_path=args.base_model,
            repo_id=args.repo_id,
            eval_summaries=args.eval_summary or None,
            datasets=args.dataset or None,
        )
        return _push(args, out_dir, hub)
