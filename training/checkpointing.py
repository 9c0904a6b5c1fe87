"""Resumable checkpoints: ``output_dir/checkpoint-STEP`` written atomically, pruned, found again.

A checkpoint is ``accelerator.save_state`` (optimizer, LR scheduler, grad scaler, RNG states) plus the
adapter (``adapter_model.safetensors``: LoRA + token-type embedding + head, never the frozen backbone) and
``training_state.json`` (step and data-stream layout). It is written into ``.tmp-checkpoint-STEP`` and
renamed when complete, so a crash never leaves a half-written ``checkpoint-STEP`` (leftover temp folders
are ignored and removed on the next save). Assumes ``output_dir`` is on a filesystem shared by all
processes, as ``accelerate`` does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.utils import DistributedType

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
ADAPTER_FILE = "adapter_model.safetensors"
STATE_FILE = "training_state.json"


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``output_dir`` as ``(step, path)``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return sorted(found)


def resolve_resume_checkpoint(output_dir: str | os.PathLike, value: str | None) -> Path | None:
    """``latest`` -> newest checkpoint in ``output_dir`` (``None`` if there is none); a path -> that
    checkpoint (``FileNotFoundError`` if missing)."""
    if not value:
        return None
    if value == "latest":
        found = list_checkpoints(output_dir)
        return found[-1][1] if found else None
    path = Path(value)
    if not path.is_dir() and (Path(output_dir) / value).is_dir():
        path = Path(output_dir) / value
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint: checkpoint folder not found: {value}")
    return path


def read_training_state(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """The ``training_state.json`` of a checkpoint (``global_step`` parsed from the folder name if absent)."""
    path = Path(checkpoint) / STATE_FILE
    if path.is_file():
        return json.loads(path.read_text())
    match = _CHECKPOINT.match(Path(checkpoint).name)
    if not match:
        raise ValueError(f"{checkpoint} has no {STATE_FILE} and its name is not checkpoint-STEP")
    return {"global_step": int(match.group(1))}


def _uses_native_model_state(accelerator: Accelerator) -> bool:
    return accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)


def register_adapter_state_hooks(accelerator: Accelerator) -> None:
    """Make ``save_state`` / ``load_state`` store only the trainable adapter of the (peft) model.

    Under DeepSpeed / FSDP the engines save their own (sharded) model state and the hooks are not used.
    """
    if _uses_native_model_state(accelerator):
        return
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    def save_hook(models: list, weights: list, output_dir: str) -> None:
        for i, model in enumerate(models):
            state = get_peft_model_state_dict(accelerator.unwrap_model(model))
            if accelerator.is_main_process:
                name = ADAPTER_FILE if i == 0 else f"adapter_model_{i}.safetensors"
                save_file(
                    {k: v.detach().cpu().contiguous() for k, v in state.items()},
                    os.path.join(output_dir, name),
                )
        weights.clear()

    def load_hook(models: list, input_dir: str) -> None:
        while models:
            model = models.pop()
            index = len(models)
            name = ADAPTER_FILE if index == 0 else f"adapter_model_{index}.safetensors"
            path = os.path.join(input_dir, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"checkpoint {input_dir} has no {name}")
            result = set_peft_model_state_dict(accelerator.unwrap_model(model), load_file(path))
            unexpected = getattr(result, "unexpected_keys", None)
            if unexpected:
                raise ValueError(f"{path}: unexpected adapter keys {unexpected[:5]}")

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | os.PathLike,
    step: int,
    training_state: dict[str, Any],
    total_limit: int | None = None,
) -> Path:
    """Atomically write ``output_dir/checkpoint-{step}`` (collective: call on every process), then keep
    only the newest ``total_limit`` checkpoints. Returns the checkpoint path."""
    root = Path(output_dir)
    final = root / f"checkpoint-{step}"
    temp = root / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in [*root.glob(".tmp-checkpoint-*"), *root.glob(".tmp-old-checkpoint-*")]:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (temp / STATE_FILE).write_text(json.dumps({**training_state, "global_step": step}, indent=2))
        if final.exists():  # re-running a step: move the old one out of the way first
            old = root / f".tmp-old-checkpoint-{step}"
            os.replace(final, old)
            os.replace(temp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temp, final)
        if total_limit is not None and total_limit > 0:
            for _, path in list_checkpoints(root)[:-total_limit]:
                shutil.rmtree(path, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final
