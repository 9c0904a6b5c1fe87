"""Convert a local tracking benchmark folder into parquet shards (+ dataset card) for the Hub.

Example::

    python training/prepare_dataset.py --dataset got10k --root /data/GOT-10k --split train \\
        --output /data/got10k-parquet [--frame-mode embed|paths] [--max-rows-per-shard 200] \\
        [--push_to_hub user/got10k-lorat]

Writes ``OUTPUT/data/<split>-XXXXX-of-NNNNN.parquet`` in the schema of
``modeling_lorat/data/hub_schema.py`` and ``OUTPUT/README.md`` (a dataset card whose YAML
``configs`` list every split converted into OUTPUT so far). ``--push_to_hub`` uploads OUTPUT
with ``HfApi().upload_folder`` (needs ``--frame-mode embed``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub import DatasetCard, DatasetCardData

if importlib.util.find_spec("modeling_lorat") is None:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_lorat.data.hub_schema import write_parquet_shards  # noqa: E402
from modeling_lorat.data.readers import DATASET_NAMES, DEFAULT_SPLITS, get_dataset  # noqa: E402

CARD_BODY = """# {pretty_name}

Single-object tracking data converted by `training/prepare_dataset.py` (LoRAT rebuild) from a
local copy of **{dataset}**. The original dataset's license and terms of use apply.

## Schema

One row per sequence:

| column | type | meaning |
|---|---|---|
| `name` | string | sequence name |
| `dataset` | string | source dataset |
| `frames` | list<binary> | encoded JPEG/PNG bytes, one per frame (empty in `paths` mode) |
| `frame_paths` | list<string> | local image paths (only in `paths` mode) |
| `boxes` | list<list<float64>[4]> | `x, y, w, h` in pixels per frame, NaN = unknown |
| `absent` | list<bool> | target absent / fully occluded |
| `attributes` | string | JSON object with per-sequence metadata |

Frame mode of the last conversion: `{frame_mode}`. Splits: {splits}.

```python
from modeling_lorat.data import load_sequences, iter_sequences
for seq in iter_sequences(load_sequences("<repo or folder>", split="{first_split}")):
    frame0, box0 = seq.load_frame(0), seq.boxes[0]
```
"""


def _existing_splits(readme: Path) -> list[str]:
    if not readme.is_file():
        return []
    configs = DatasetCard.load(readme).data.to_dict().get("configs") or []
    return [
        entry["split"] for config in configs for entry in config.get("data_files", []) if "split" in entry
    ]


def build_card(output: Path, dataset: str, split: str, frame_mode: str) -> DatasetCard:
    """Dataset card for ``output``, merging the splits already described by its README.md."""
    splits = [s for s in _existing_splits(output / "README.md") if s != split] + [split]
    pretty_name = f"{dataset} (LoRAT tracking format)"
    data = DatasetCardData(
        license="other",
        task_categories=["object-detection"],
        tags=["video", "visual-object-tracking", "single-object-tracking"],
        pretty_name=pretty_name,
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits],
            }
        ],
    )
    body = CARD_BODY.format(
        pretty_name=pretty_name,
        dataset=dataset,
        frame_mode=frame_mode,
        splits=", ".join(f"`{s}`" for s in splits),
        first_split=splits[0],
    )
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    parser.add_argument("--root", required=True, type=Path, help="local dataset folder (official layout)")
    parser.add_argument("--split", default=None, help="dataset split (default: the reader's default)")
    parser.add_argument("--hub-split", default=None, help="split name of the shards (default: --split)")
    parser.add_argument("--output", required=True, type=Path, help="output folder for shards + README.md")
    parser.add_argument("--frame-mode", choices=("embed", "paths"), default="embed")
    parser.add_argument("--max-rows-per-shard", type=int, default=200)
    parser.add_argument(
        "--max-shard-mb", type=int, default=512, help="close a shard after about this many MB"
    )
    parser.add_argument("--limit", type=int, default=None, help="convert only the first N sequences")
    parser.add_argument("--push_to_hub", "--push-to-hub", dest="push_to_hub", default=None, metavar="REPO")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the conversion; returns the process exit code."""
    args = parse_args(argv)
    if args.push_to_hub and args.frame_mode != "embed":
        raise ValueError("--push_to_hub needs --frame-mode embed (local paths are useless on the Hub)")
    sequences = get_dataset(args.dataset, args.root, args.split)
    if args.limit is not None:
        sequences = sequences[: args.limit]
    split = args.hub_split or args.split or DEFAULT_SPLITS.get(args.dataset, "test")
    shards = write_parquet_shards(
        sequences,
        args.output,
        max_rows_per_shard=args.max_rows_per_shard,
        embed_frames=args.frame_mode == "embed",
        split=split,
        max_shard_bytes=args.max_shard_mb * 2**20,
    )
    card = build_card(args.output, args.dataset, split, args.frame_mode)
    card.save(args.output / "README.md")
    print(f"wrote {len(sequences)} sequences in {len(shards)} shard(s) to {args.output / 'data'}")
    if args.push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(args.push_to_hub, repo_type="dataset", exist_ok=True, private=args.private)
        api.upload_folder(folder_path=str(args.output), repo_id=args.push_to_hub, repo_type="dataset")
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
