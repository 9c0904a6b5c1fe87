"""Model cards for LoRAT checkpoints: metadata, evaluation results (``model-index``), usage, citation.

Metadata choices (validated offline with ``ModelCardData`` / ``model_index_to_eval_results``):

* ``pipeline_tag: object-detection``: the Hub has no tracking task; object detection (an image in,
  boxes out) is the closest valid tag. The actual task, single-object tracking, is in ``tags`` and in
  each result's ``task.name``; the model-index ``task.type`` is ``object-detection`` for the same reason.
* ``library_name: transformers``: checkpoints carry ``auto_map`` + the modeling code, so
  ``AutoModel.from_pretrained(repo, trust_remote_code=True)`` works without the ``lorat`` package.
* metric values are percentages (``success_auc`` 0.717 in ``summary.json`` -> 71.7), as in the paper.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modeling_lorat.configuration_lorat import LORAT_PRESETS, LoratConfig

TEMPLATE_PATH = Path(__file__).parent / "templates" / "model_card.md.j2"
PIPELINE_TAG = "object-detection"
TASK_TYPE = "object-detection"
TASK_NAME = "Single Object Tracking"
TAGS = ["tracking", "single-object-tracking", "visual-object-tracking", "lora", "dinov2", "lorat"]

#: summary.json metric key -> (display name, column header)
METRIC_NAMES = {
    "success_auc": "Success AUC",
    "precision": "Precision",
    "norm_precision": "Normalized precision",
    "ao": "AO",
    "sr50": "SR@0.5",
    "sr75": "SR@0.75",
}
DATASET_NAMES = {
    "lasot": "LaSOT",
    "lasot_ext": "LaSOT_ext",
    "got10k": "GOT-10k",
    "trackingnet": "TrackingNet",
    "tnl2k": "TNL2K",
    "otb": "OTB100",
    "synthetic": "Synthetic",
}
#: Paper results (success AUC %, GOT-10k: AO %), LoRAT ECCV 2024.
PAPER_RESULTS = {
    "b-224": {"LaSOT": 71.7, "LaSOT_ext": 50.3, "TrackingNet": 83.5, "GOT-10k": 72.1, "TNL2K": 58.8},
    "l-378": {"LaSOT": 75.1, "LaSOT_ext": 56.6, "TrackingNet": 85.6, "GOT-10k": 77.5, "TNL2K": 62.3},
    "g-378": {"LaSOT": 76.2, "LaSOT_ext": 56.5, "TrackingNet": 86.0, "GOT-10k": 78.9, "TNL2K": 62.7},
}
#: Paper speed / size figures (empty = not reported in the paper).
PAPER_SPEED = {
    "b-224": {"fps": "209", "gmacs": "30", "params": "99M", "trainable": "", "train_memory": ""},
    "g-378": {"fps": "", "gmacs": "1161", "params": "1216M", "trainable": "80M", "train_memory": "25.8 GB"},
}
_BACKBONE_TITLES = {"s": "ViT-S/14", "b": "ViT-B/14", "l": "ViT-L/14", "g": "ViT-g/14"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def variant_of(config: LoratConfig) -> str | None:
    """The official preset a config matches (``"b-224"``...), or None for custom sizes."""
    backbone = config.backbone_config
    for name, preset in LORAT_PRESETS.items():
        bb = preset["backbone_config"]
        if (
            backbone.hidden_size == bb["hidden_size"]
            and backbone.num_hidden_layers == bb["num_hidden_layers"]
            and bool(getattr(backbone, "use_swiglu_ffn", False)) == bool(bb.get("use_swiglu_ffn", False))
            and config.template_size == preset["template_size"]
            and config.search_size == preset["search_size"]
        ):
            return name
    return None


def variant_title(variant: str | None) -> str:
    """Display name of a preset: ``"b-224"`` -> ``"LoRAT-B-224"``, ``"g-378"`` -> ``"LoRAT-g-378"``."""
    if variant is None:
        return "LoRAT (custom size)"
    size, resolution = variant.split("-")
    return f"LoRAT-{size if size == 'g' else size.upper()}-{resolution}"


def repo_name_for(config: LoratConfig, form: str = "merged") -> str:
    """Repository name of the naming scheme: ``lorat-b-224`` / ``lorat-b-224-adapter``.

    Configs that match no preset get ``lorat-custom-<search size>``.
    """
    variant = variant_of(config) or f"custom-{config.search_size}"
    return f"lorat-{variant}" + ("-adapter" if form == "adapter" else "")


def load_eval_summary(summary: dict | str | os.PathLike) -> dict:
    """A summary dict from ``lorat evaluate``: given as a dict, a ``summary.json`` path or its run folder.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` when ``dataset`` / ``metrics`` are
    missing or the metrics are none of the known keys.
    """
    if isinstance(summary, dict):
        data, origin = summary, "summary dict"
    else:
        path = Path(summary)
        if path.is_dir():
            path = path / "summary.json"
        if not path.is_file():
            raise FileNotFoundError(f"evaluation summary not found: {path}")
        data, origin = json.loads(path.read_text()), str(path)
    if not isinstance(data, dict) or not data.get("dataset"):
        raise ValueError(f"{origin}: an evaluation summary needs a 'dataset' name")
    metrics = data.get("metrics")
    if metrics is not None and (not isinstance(metrics, dict) or not set(metrics) & set(METRIC_NAMES)):
        raise ValueError(f"{origin}: 'metrics' must hold some of {sorted(METRIC_NAMES)}, got {metrics!r}")
    return data


def _percent(value: Any) -> float | None:
    if value is None:
        return None
    return round(float(value) * 100.0, 2)


def eval_results_from_summaries(summaries: Iterable[dict]) -> list[EvalResult]:
    """One ``EvalResult`` per (summary, metric); metric values in percent. Summaries without metrics are skipped."""
    results = []
    for summary in summaries:
        metrics = summary.get("metrics") or {}
        dataset = str(summary["dataset"])
        for key, name in METRIC_NAMES.items():
            value = _percent(metrics.get(key))
            if value is None:
                continue
            results.append(
                EvalResult(
                    task_type=TASK_TYPE,
                    task_name=TASK_NAME,
                    dataset_type=dataset.lower(),
                    dataset_name=DATASET_NAMES.get(dataset.lower(), dataset),
                    dataset_split=summary.get("split") or None,
                    metric_type=key,
                    metric_name=name,
                    metric_value=value,
                )
            )
    return results


def _results_rows(summaries: Sequence[dict]) -> list[dict]:
    rows = []
    for summary in summaries:
        metrics = summary.get("metrics") or {}
        cells = [
            f"{METRIC_NAMES[k]} {_percent(v):.1f}"
            for k, v in metrics.items()
            if k in METRIC_NAMES and v is not None
        ]
        fps = summary.get("fps")
        rows.append(
            {
                "dataset": DATASET_NAMES.get(str(summary["dataset"]).lower(), summary["dataset"]),
                "split": summary.get("split") or "",
                "protocol": f"`{summary['protocol']}`" if summary.get("protocol") else "not recorded",
                "metrics": ", ".join(cells) or "not scored",
                "sequences": summary.get("num_evaluated", summary.get("num_sequences", "")),
                "fps": f"{fps:.1f}" if isinstance(fps, (int, float)) else "",
            }
        )
    return rows


def _count_parameters(model_dir: Path) -> dict[str, int]:
    """Parameters stored per weights file kind, read from the safetensors headers (no tensor loaded)."""
    from safetensors import safe_open

    counts: dict[str, int] = {}
    for path in sorted(model_dir.glob("*.safetensors")):
        kind = "adapter" if path.name.startswith("adapter_model") else "model"
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():
                numel = 1
                for dim in handle.get_slice(key).get_shape():
                    numel *= int(dim)
                counts[kind] = counts.get(kind, 0) + numel
    return counts


def _millions(count: int | None) -> str:
    if not count:
        return "n/a"
    return f"{count / 1e6:.1f}M" if count >= 1e5 else f"{count:,}"


def _hub_id(value: str | None) -> str | None:
    """``value`` when it looks like a Hub repo id (``org/name``) and is not a local folder."""
    if value and _REPO_ID.match(value) and not Path(value).exists():
        return value
    return None


def read_training_log(path: str | os.PathLike) -> dict | None:
    """Last record of ``train_log.jsonl`` (written by ``training/train.py``): ``step``, ``loss``... or None."""
    path = Path(path)
    if not path.is_file():
        return None
    last = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                last = json.loads(line)
            except json.JSONDecodeError:
                continue
    return last if isinstance(last, dict) and "step" in last else None


def checkpoint_form(model_dir: str | os.PathLike) -> str:
    """``"adapter"`` when the folder holds ``adapter_config.json``, else ``"merged"``."""
    return "adapter" if (Path(model_dir) / "adapter_config.json").is_file() else "merged"


def render_model_card(
    model_dir: str | os.PathLike,
    repo_id: str,
    eval_summaries: Sequence[dict | str | os.PathLike] | None = None,
    *,
    datasets: Sequence[str] | None = None,
    license: str = "apache-2.0",
    training_log: str | os.PathLike | None = None,
    template_path: str | os.PathLike | None = None,
) -> ModelCard:
    """Render the model card (README.md) of the checkpoint in ``model_dir``, to be pushed as ``repo_id``.

    Args:
        model_dir: checkpoint folder (``config.json`` + ``model.safetensors`` or an adapter).
        repo_id: the Hub id used in the usage snippets (``USER/lorat-b-224``).
        eval_summaries: ``summary.json`` dicts / paths / run folders from ``lorat evaluate``; they fill
            the ``model-index`` and the results table.
        datasets: Hub ids of the training datasets for the metadata.
        license: SPDX-like Hub license id.
        training_log: ``train_log.jsonl`` of the run (default: the one in ``model_dir``, if any); its last
            record (steps, loss) is quoted in the card.
        template_path: a Jinja template to use instead of ``templates/model_card.md.j2``.

    Returns:
        a ``huggingface_hub.ModelCard``; ``card.save(path)`` writes it.
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {model_dir}; is it a LoRAT checkpoint folder?")
    config = LoratConfig.from_pretrained(str(model_dir))
    form = checkpoint_form(model_dir)
    variant = variant_of(config)
    summaries = [load_eval_summary(s) for s in (eval_summaries or [])]
    model_name = repo_id.split("/")[-1]
    backbone = config.backbone_name_or_path
    base_model = _hub_id(backbone) or (
        _hub_id(LORAT_PRESETS[variant]["backbone_name_or_path"]) if variant else None
    )
    tags = list(TAGS) + (["peft", "lora-adapter"] if form == "adapter" else [])
    card_data = ModelCardData(
        license=license,
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=tags,
        base_model=base_model,
        base_model_relation=("adapter" if form == "adapter" else "finetune") if base_model else None,
        datasets=list(datasets) if datasets else None,
        model_name=model_name,
        eval_results=eval_results_from_summaries(summaries) or None,
    )
    counts = _count_parameters(model_dir)
    from modeling_lorat.lora import expected_trainable_parameters

    bb = config.backbone_config
    size_key = variant.split("-")[0] if variant else None
    card = ModelCard.from_template(
        card_data,
        template_path=str(template_path or TEMPLATE_PATH),
        repo_id=repo_id,
        model_name=model_name,
        form=form,
        variant=variant,
        variant_title=variant_title(variant),
        merged_repo_id=repo_id.removesuffix("-adapter"),
        adapter_repo_id=repo_id if repo_id.endswith("-adapter") else f"{repo_id}-adapter",
        backbone=backbone or "unknown",
        backbone_title=_BACKBONE_TITLES.get(
            size_key, f"ViT ({bb.num_hidden_layers} layers, width {bb.hidden_size})"
        ),
        config=config,
        params_stored=_millions(counts.get("adapter" if form == "adapter" else "model")),
        params_trainable=_millions(expected_trainable_parameters(config)),
        results=_results_rows(summaries),
        paper_results=PAPER_RESULTS,
        paper_speed=PAPER_SPEED,
        training=read_training_log(training_log or model_dir / "train_log.jsonl"),
    )
    return card
