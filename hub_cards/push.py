"""Export LoRAT checkpoints in their Hub forms and push them (safetensors only, never pickles).

Forms (see ``hub_cards/__init__.py`` for the repository naming scheme):

* ``"adapter"``: ``adapter_config.json`` + ``adapter_model.safetensors`` (LoRA, token-type embeddings,
  head) + ``config.json`` whose ``backbone_name_or_path`` names the DINOv2 backbone, so
  ``LoratForTracking.from_pretrained("USER/lorat-b-224-adapter")`` rebuilds base + adapter.
* ``"merged"``: LoRA folded into the Linear weights; ``config.json`` + ``model.safetensors``; loads
  with no peft.
* ``"full"``: the same files as ``"merged"`` (the architecture doc's name for a complete checkpoint); a
  model that still has LoRA layers is merged first.

Every form also gets ``preprocessor_config.json``, a model card (``README.md``) and the Python files that
load it without this package (``trust_remote_code=True``): ``config.json`` names them in its ``auto_map``
(config, model, image processor) and ``custom_pipelines`` (the ``"single-object-tracking"`` pipeline),
``preprocessor_config.json`` in its ``auto_map`` (see `LoratConfig.save_pretrained`).
"""

from __future__ import annotations

import copy
import glob
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .model_card import checkpoint_form, render_model_card

logger = logging.getLogger(__name__)

FORMS = ("adapter", "merged", "full")
#: Pickle-based weight formats that are never uploaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
UPLOAD_SUFFIXES = (".safetensors", ".json", ".md")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")
#: Marker of peft's auto-generated placeholder card (replaced by ours).
_PEFT_STUB_MARKER = "<!-- Provide a quick summary of what the model is/does. -->"
DEFAULT_COMMIT_MESSAGE = "Upload LoRAT checkpoint"


# ---------------------------------------------------------------------------------------------- export
def _is_peft(model: Any) -> bool:
    return hasattr(model, "merge_and_unload") and hasattr(model, "get_base_model")


def _save_processor(source_dir: Path | None, config: Any, out_dir: Path) -> None:
    """``preprocessor_config.json`` (the source folder's settings, else the config's) with its code."""
    from modeling_lorat.image_processing_lorat import LoratImageProcessor

    source = source_dir / "preprocessor_config.json" if source_dir else None
    if source is not None and source.is_file():
        processor = LoratImageProcessor.from_pretrained(str(source_dir))
    else:
        processor = LoratImageProcessor.from_config(config)
    processor.save_pretrained(out_dir)


def _save_adapter(peft_model: Any, out_dir: Path, backbone_name_or_path: str | None) -> Any:
    """Adapter weights + config naming the backbone + the shipped code; returns the saved config."""
    from modeling_lorat.lora import save_adapter

    base = peft_model.get_base_model()
    config = copy.deepcopy(base.config)
    if backbone_name_or_path:
        config.backbone_name_or_path = str(backbone_name_or_path)
    if not config.backbone_name_or_path:
        raise ValueError(
            "the adapter form needs the base backbone's id in config.json: the model's config has no "
            "backbone_name_or_path; pass backbone_name_or_path='facebook/dinov2-base' (or --base-model)"
        )
    save_adapter(peft_model, out_dir, config)
    return config


def _set_backbone_id(out_dir: Path, config: Any, backbone_name_or_path: str) -> None:
    """Record ``backbone_name_or_path`` in ``out_dir/config.json`` (and, for an adapter, as peft's
    ``base_model_name_or_path`` in ``adapter_config.json``) and in ``config``."""
    for name, key in (
        ("config.json", "backbone_name_or_path"),
        ("adapter_config.json", "base_model_name_or_path"),
    ):
        path = out_dir / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        data[key] = str(backbone_name_or_path)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    config.backbone_name_or_path = str(backbone_name_or_path)


def _save_merged(model: Any, out_dir: Path, backbone_name_or_path: str | None) -> Any:
    """Merge LoRA (on a deep copy, so ``model`` keeps its adapters; this briefly doubles the memory) and
    save a full safetensors checkpoint."""
    if _is_peft(model):
        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(str(out_dir), safe_serialization=True)
    config = copy.deepcopy(model.config)
    if backbone_name_or_path:
        _set_backbone_id(out_dir, config, backbone_name_or_path)
    return config


def _export_from_dir(source: Path, out_dir: Path, form: str, backbone_name_or_path: str | None) -> Any:
    from modeling_lorat import LoratConfig, LoratForTracking

    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {source}; expected a LoRAT checkpoint folder")
    if form != "adapter":
        model = LoratForTracking.from_pretrained(str(source))
        return _save_merged(model, out_dir, backbone_name_or_path)
    if checkpoint_form(source) != "adapter":
        raise ValueError(
            f"{source} is a full checkpoint: its LoRA is already merged, so no adapter can be exported; "
            "export the adapter from the training output folder or from the peft model"
        )
    if source.resolve() != out_dir.resolve():
        for name in files_to_upload(source):
            shutil.copy2(source / name, out_dir / name)
    config = LoratConfig.from_pretrained(str(out_dir))
    if backbone_name_or_path:
        config.backbone_name_or_path = str(backbone_name_or_path)
    if not config.backbone_name_or_path:
        raise ValueError(
            f"{source}/config.json has no backbone_name_or_path; pass backbone_name_or_path (--base-model) "
            "with the DINOv2 id the adapter was trained on"
        )
    config.save_pretrained(out_dir)  # with the code of this version (older folders may lack some)
    _set_backbone_id(out_dir, config, config.backbone_name_or_path)
    return config


def export_checkpoint(
    model_or_dir: Any,
    out_dir: str | os.PathLike,
    form: str = "adapter",
    *,
    backbone_name_or_path: str | None = None,
    repo_id: str | None = None,
    eval_summaries: Sequence[Any] | None = None,
    datasets: Sequence[str] | None = None,
    model_card: bool = True,
) -> Path:
    """Write ``model_or_dir`` to ``out_dir`` in one Hub form (``"adapter"``, ``"merged"`` or ``"full"``).

    Args:
        model_or_dir: a peft-wrapped ``LoratForTracking`` (from ``apply_lora`` / training), a plain
            ``LoratForTracking``, or a checkpoint folder (full or adapter).
        out_dir: destination folder (created; may equal a source folder for the adapter form).
        form: ``"adapter"`` needs LoRA weights (a peft model or an adapter folder); ``"merged"`` and
            ``"full"`` fold LoRA into the weights (on a copy) and write ``model.safetensors``.
        backbone_name_or_path: DINOv2 id to record in ``config.json`` (required for the adapter form when
            the config has none).
        repo_id: id used by the model card's snippets (default ``USER/<repo_name_for(config, form)>``).
        eval_summaries: ``summary.json`` dicts / paths for the card's ``model-index``.
        datasets: Hub ids of the training datasets for the card's metadata.
        model_card: (re)write ``README.md``; otherwise an existing card is kept (peft's placeholder card is
            always removed).

    Returns:
        ``out_dir`` as a ``Path``. Raises ``ValueError`` for an unknown form, an adapter export of a model
        without LoRA, or an adapter without backbone id; ``FileNotFoundError`` for a missing folder.
    """
    from .model_card import repo_name_for

    if form not in FORMS:
        raise ValueError(f"unknown checkpoint form {form!r}; expected one of {FORMS}")
    out_dir = Path(out_dir)
    source_dir: Path | None = None
    if isinstance(model_or_dir, (str, os.PathLike)):
        source_dir = Path(model_or_dir)
        if not source_dir.is_dir():
            raise FileNotFoundError(f"checkpoint folder not found: {source_dir}")
        out_dir.mkdir(parents=True, exist_ok=True)
        config = _export_from_dir(source_dir, out_dir, form, backbone_name_or_path)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        if form == "adapter":
            if not _is_peft(model_or_dir):
                raise ValueError(
                    "the adapter form needs a peft model with LoRA layers (e.g. from apply_lora); this model has "
                    "none (already merged?) - export it with form='merged'"
                )
            config = _save_adapter(model_or_dir, out_dir, backbone_name_or_path)
        else:
            config = _save_merged(model_or_dir, out_dir, backbone_name_or_path)
    _save_processor(source_dir, config, out_dir)
    readme = out_dir / "README.md"
    if _is_stub_card(readme):
        readme.unlink()
    if model_card:
        repo_id = repo_id or f"USER/{repo_name_for(config, form)}"
        log = source_dir / "train_log.jsonl" if source_dir else None
        card = render_model_card(out_dir, repo_id, eval_summaries, datasets=datasets, training_log=log)
        card.save(readme)
    return out_dir


# ---------------------------------------------------------------------------------------------- push
def auto_map_code_files(folder: str | os.PathLike) -> list[str]:
    """Python files the ``auto_map`` entries of ``config.json`` / ``preprocessor_config.json`` and the
    ``custom_pipelines`` of ``config.json`` need (their modules and, transitively, their relative
    imports), as names in ``folder``."""
    from transformers.dynamic_module_utils import get_relative_import_files

    folder = Path(folder)
    modules: set[str] = set()
    for name in ("config.json", "preprocessor_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        references = list((data.get("auto_map") or {}).values())
        references += [task.get("impl") for task in (data.get("custom_pipelines") or {}).values()]
        for reference in references:
            for ref in reference if isinstance(reference, (list, tuple)) else [reference]:
                if ref:
                    modules.add(ref.split("--")[-1].rsplit(".", 1)[0])
    files: set[str] = set()
    for module in modules:
        path = folder / f"{module}.py"
        if not path.is_file():
            raise FileNotFoundError(f"config auto_map refers to {module}.py, which is missing from {folder}")
        files.add(path.name)
        files.update(Path(p).name for p in get_relative_import_files(str(path)))
    return sorted(files)


def files_to_upload(folder: str | os.PathLike) -> list[str]:
    """Names of the files :func:`push_to_hub` uploads from ``folder``: top-level ``*.safetensors``,
    ``*.json``, ``*.md`` and the ``auto_map`` code files. Sub-folders, hidden files and pickles are never
    included."""
    folder = Path(folder)
    code = set(auto_map_code_files(folder))
    names = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix in UPLOAD_SUFFIXES or path.name in code:
            names.append(path.name)
    return names


def _is_stub_card(readme: Path) -> bool:
    return readme.is_file() and _PEFT_STUB_MARKER in readme.read_text(encoding="utf-8")


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    api: Any = None,
    *,
    eval_summaries: Sequence[Any] | None = None,
    token: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
) -> str:
    """Create ``repo_id`` (if needed) and upload the checkpoint in ``folder``; returns the repo URL.

    Only :func:`files_to_upload` are sent (``allow_patterns``), and pickle files are excluded again with
    ``ignore_patterns``: ``*.bin``/``*.pt``/``*.pth``/``*.ckpt`` are skipped with a warning, and a folder
    whose weights exist only as pickles is refused (``ValueError``). A model card is rendered into
    ``folder/README.md`` when there is none (or only peft's placeholder).

    Args:
        folder: a checkpoint folder (from ``export_checkpoint`` or ``training/train.py``).
        repo_id: ``USER/lorat-b-224`` (see the naming scheme in ``hub_cards``).
        private: create the repository as private.
        commit_message: message of the upload commit.
        api: an ``HfApi``-like object (``create_repo``, ``upload_folder``); default ``HfApi(token=token)``.
        eval_summaries: ``summary.json`` dicts / paths for a newly generated card.
        token, revision, create_pr: passed to the Hub calls.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {folder}")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} has no config.json; export the checkpoint first (export_checkpoint)")
    pickles = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)
    if not any((folder / name).is_file() for name in WEIGHT_FILES) and not list(
        folder.glob("model-*.safetensors")
    ):
        hint = f" (found only pickle files: {', '.join(pickles)})" if pickles else ""
        raise ValueError(
            f"{folder} holds no safetensors weights (model.safetensors or adapter_model.safetensors){hint}; "
            "pickle checkpoints are not uploaded - re-save with safe_serialization=True"
        )
    if pickles:
        logger.warning("not uploading pickle files from %s: %s", folder, ", ".join(pickles))
    readme = folder / "README.md"
    if not readme.is_file() or _is_stub_card(readme):
        render_model_card(folder, repo_id, eval_summaries).save(readme)
    names = files_to_upload(folder)
    skipped = sorted({p.name for p in folder.iterdir()} - set(names))
    if skipped:
        logger.info("not uploading from %s: %s", folder, ", ".join(skipped))

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    repo_url = api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model")
    repo_id = getattr(repo_url, "repo_id", None) or repo_id
    api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="model",
        commit_message=commit_message,
        allow_patterns=[glob.escape(name) for name in names],
        ignore_patterns=[f"*{suffix}" for suffix in PICKLE_SUFFIXES],
        revision=revision,
        create_pr=create_pr,
    )
    return str(repo_url) if repo_url else f"https://huggingface.co/{repo_id}"


# ---------------------------------------------------------------------------------------------- Space
SPACE_DIR = Path(__file__).parent / "space"


def export_space(out_dir: str | os.PathLike, model_id: str) -> Path:
    """A ready-to-push Space folder: ``app.py``, ``requirements.txt``, ``README.md`` (metadata naming
    ``model_id``, which the app loads by default) and a copy of the ``modeling_lorat`` package."""
    import modeling_lorat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(SPACE_DIR / name, out_dir / name)
    readme = (SPACE_DIR / "README.md").read_text(encoding="utf-8")
    (out_dir / "README.md").write_text(readme.replace("org/lorat-b-224", model_id), encoding="utf-8")
    package = Path(modeling_lorat.__file__).parent
    target = out_dir / "modeling_lorat"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return out_dir


def push_space(
    repo_id: str, model_id: str, api: Any = None, private: bool = False, token: str | None = None
) -> str:
    """Create the Gradio Space ``repo_id`` demoing ``model_id`` and upload :func:`export_space`'s folder."""
    import tempfile

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_space(tmp, model_id)
        url = api.create_repo(
            repo_id=repo_id, private=private, exist_ok=True, repo_type="space", space_sdk="gradio"
        )
        api.upload_folder(
            repo_id=getattr(url, "repo_id", None) or repo_id,
            folder_path=str(folder),
            repo_type="space",
            commit_message=f"LoRAT demo for {model_id}",
            ignore_patterns=["*.pyc", "__pycache__/*", *[f"*{s}" for s in PICKLE_SUFFIXES]],
        )
    return str(url) if url else f"https://huggingface.co/spaces/{repo_id}"
