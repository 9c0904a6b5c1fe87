"""``export_model``: a merged LoRAT checkpoint -> an export folder (model graph + contract + configs).

The folder is built in a temporary sibling, checked (the saved graph is run at batch 1 and 3 and
compared with the eager model), and only then moved into place, so ``output_dir`` never holds a partial
or unverified export; an existing folder is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .contract import CONTRACT_FILE, MODEL_FILES, export_contract

FORMATS = tuple(MODEL_FILES)
#: Largest accepted ``|export - eager|`` (float32, any output) unless told otherwise.
DEFAULT_ATOL = 1e-4


@dataclass
class ExportResult:
    """Where an export went: ``output_dir``, the ``model_file`` in it, and the verification's largest
    difference from the eager model per output (empty when not verified)."""

    output_dir: Path
    model_file: Path
    max_abs_diff: dict[str, float] = field(default_factory=dict)


def check_output_dir(output_dir: str | Path, overwrite: bool = False) -> Path:
    """``output_dir`` as a ``Path`` if an export may be written there, else ``FileExistsError`` /
    ``ValueError`` (a file name such as ``model.onnx`` instead of a folder, a parent that is a file or
    not writable)."""
    output_dir = Path(output_dir)
    if output_dir.suffix.lower() in (".onnx", ".pt2"):
        raise ValueError(
            f"--output {output_dir} looks like a file name; give a folder (it will hold "
            f"{' or '.join(MODEL_FILES.values())}, {CONTRACT_FILE} and the configs)"
        )
    if output_dir.exists() and not overwrite and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise FileExistsError(f"output {output_dir} exists and is not empty (pass --overwrite to replace it)")
    parent = output_dir.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot create --output {output_dir}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot create --output {output_dir}: {parent} is not writable")
    return output_dir


def _prepare_model(model: Any, fuse: bool) -> Any:
    """A float32 eval `LoratForTracking` of our own from a model (copied: the caller's stays as it is), a
    ``PeftModel`` (merged into a copy) or a checkpoint path (loaded, LoRA merged)."""
    from ..modeling_lorat import LoratForTracking

    if isinstance(model, (str, os.PathLike)):
        model = LoratForTracking.from_pretrained(model)
    elif isinstance(model, torch.nn.Module):
        model = copy.deepcopy(model)
        if hasattr(model, "merge_and_unload"):  # a PeftModel
            model = model.merge_and_unload()
    if not isinstance(model, LoratForTracking):
        raise ValueError(f"expected a LoratForTracking or a checkpoint path, got {type(model).__name__}")
    if model.is_fused and not fuse:
        raise ValueError("the model is already fused for inference; export it with fuse=True or reload it")
    return model.float().eval()


def _write_configs(config: Any, folder: Path) -> None:
    """``preprocessor_config.json`` with the image processor's code (``auto_map``: the folder alone gives
    ``AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)``, crops and post-processing) and
    ``config.json`` without ``auto_map`` (the folder holds a graph, not the model code or weights)."""
    from ..image_processing_lorat import LoratImageProcessor

    LoratImageProcessor.from_config(config).save_pretrained(folder)
    data = json.loads(config.to_json_string())
    for key in ("auto_map", "custom_pipelines"):
        data.pop(key, None)
    (folder / "config.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _move_into_place(tmp: Path, output_dir: Path) -> None:
    """Rename the finished ``tmp`` folder to ``output_dir``, replacing what is there only once ``tmp`` is
    complete (the old folder or file is removed after the new one is in place)."""
    old = None
    if output_dir.exists() or output_dir.is_symlink():
        old = output_dir.with_name(f".{output_dir.name}.old-{tmp.name[-8:]}")
        output_dir.rename(old)
    tmp.rename(output_dir)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()


def export_model(
    model: Any,
    output_dir: str | Path,
    format: str = "onnx",
    fuse: bool = True,
    overwrite: bool = False,
    verify: bool = True,
    atol: float = DEFAULT_ATOL,
    opset: int | None = None,
) -> ExportResult:
    """Export a merged LoRAT model with a dynamic batch to ``output_dir``.

    Args:
        model: a `LoratForTracking`, a ``PeftModel`` around one (merged into a copy), or a checkpoint path
            (full or adapter form, loaded with ``LoratForTracking.from_pretrained``). Exported in float32.
        output_dir: folder to create: ``model.onnx`` or ``model.pt2``, ``lorat_export.json`` (inputs,
            outputs, crop and post-processing settings), ``config.json``, ``preprocessor_config.json`` and
            the image processor's code (for ``AutoImageProcessor`` with ``trust_remote_code=True``).
        format: ``"onnx"`` (torch's dynamo exporter; needs ``onnx`` and ``onnxscript``) or
            ``"torch-export"`` (``torch.export``, saved with ``torch.export.save``).
        fuse: export the inference-fused model (:meth:`LoratForTracking.fuse_for_inference`: fewer,
            larger ops). A model object is exported from a copy and left as it is.
        overwrite: replace an existing non-empty ``output_dir``.
        verify: run the saved graph (onnxruntime for ONNX) at batch 1 and 3 and require every output to
            equal the eager, unfused model within ``atol``; needs ``onnxruntime`` for ONNX.
        opset: ONNX opset (default: the exporter's).

    Raises ``FileExistsError`` for an existing output, ``ValueError`` for a bad format or a failed
    verification (nothing is written then), ``ModuleNotFoundError`` when an exporter package is missing.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    if opset is not None and format != "onnx":
        raise ValueError("opset applies to --format onnx only")
    output_dir = check_output_dir(output_dir, overwrite)
    source = str(model) if isinstance(model, (str, os.PathLike)) else getattr(model, "name_or_path", None)
    model = _prepare_model(model, fuse)

    from .runtime import load_runner, max_abs_differences, reference_cases
    from .tracing import to_exported_program, to_onnx_program

    if format == "onnx":
        import onnxscript  # noqa: F401  (fail before tracing when the exporter cannot run)

        if verify:
            import onnxruntime  # noqa: F401
    cases = reference_cases(model) if verify else []  # eager, before fusing
    if model.is_fused != fuse:
        model.fuse_for_inference()
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}.partial-"))
    try:
        model_file = tmp / MODEL_FILES[format]
        if format == "onnx":
            program = to_onnx_program(model, opset)
            program.save(model_file)  # weights go to model.onnx.data when over ONNX's 2 GB limit
            opset = program.model.opset_imports[""]
        else:
            torch.export.save(to_exported_program(model), model_file)
        differences: dict[str, float] = {}
        if verify:
            differences = max_abs_differences(load_runner(model_file, format), cases)
            worst = max(differences.values())
            if not worst <= atol:
                raise ValueError(
                    f"the exported model differs from the eager model by {worst:.3g} > atol {atol:g} "
                    f"({', '.join(f'{k} {v:.3g}' for k, v in differences.items())}); nothing was written"
                )
        verification = (
            {
                "batch_sizes": [case[0][0].shape[0] for case in cases],
                "max_abs_diff": differences,
                "atol": atol,
            }
            if verify
            else None
        )
        contract = export_contract(model.config, format, fuse, opset, verification, source)
        (tmp / CONTRACT_FILE).write_text(json.dumps(contract, indent=2) + "\n", encoding="utf-8")
        _write_configs(model.config, tmp)
        tmp.chmod(0o755)  # mkdtemp makes 0700; an export is an ordinary user folder
        _move_into_place(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(output_dir, output_dir / MODEL_FILES[format], differences)
