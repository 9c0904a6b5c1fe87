"""Resumable checkpoints: ``output_dir/checkpoint-STEP`` written atomically, pruned, found again.

A checkpoint is ``accelerator.save_state`` (optimizer, LR scheduler, grad scaler, RNG states) plus the
adapter (``adapter_model.safetensors``: LoRA + token-type embedding + head, never the frozen backbone) and
``training_state.json`` (step and data-stream layout). It is written into ``.tmp-checkpoint-STEP``, its
files and folder are fsynced, and it is renamed when complete, so neither a crash nor a power loss leaves
a half-written ``checkpoint-STEP`` (leftover temp folders are ignored and removed on the next save).
Re-saving an existing step swaps the new folder in with one atomic exchange (Linux ``renameat2``);
elsewhere the old one is first renamed to ``.tmp-old-checkpoint-STEP``, which is put back if the run dies
before the new one is in place. Assumes ``output_dir`` is on a filesystem shared by all processes, as
``accelerate`` does.

Resuming (:func:`load_checkpoint`) names a damaged file (a truncated ``optimizer.bin``, say) and the
newest earlier checkpoint to resume from instead; :func:`cut_log` drops the log lines of the steps after
the checkpoint, which the resumed run trains (and logs) again.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.utils import DistributedType

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
ADAPTER_FILE = "adapter_model.safetensors"
STATE_FILE = "training_state.json"


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``output_dir`` as ``(step, path)``, oldest first (a checkpoint that a killed
    re-save left as ``.tmp-old-checkpoint-STEP`` is put back first)."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    restore_interrupted_resaves(root)
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


def restore_interrupted_resaves(output_dir: str | os.PathLike) -> list[Path]:
    """Rename ``.tmp-old-checkpoint-STEP`` back to ``checkpoint-STEP`` where a re-save of that step was
    killed between moving the old checkpoint aside and moving the new one in; drop it where the new one
    made it. Returns the restored checkpoints."""
    root, restored = Path(output_dir), []
    for old in sorted(root.glob(".tmp-old-checkpoint-*")):
        final = root / old.name.removeprefix(".tmp-old-")
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        elif _CHECKPOINT.match(final.name):
            try:
                os.replace(old, final)
            except FileNotFoundError:  # another process of this run put it back first
                continue
            fsync_dir(root)
            restored.append(final)
    return restored


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (new and renamed names) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: str | os.PathLike) -> None:
    """fsync every file under ``folder``, then every folder, deepest first (before renaming it into place)."""
    folders = []
    for current, _, files in os.walk(folder):
        folders.append(current)
        for name in files:
            with open(os.path.join(current, name), "rb") as handle:
                os.fsync(handle.fileno())
    for current in reversed(folders):
        fsync_dir(current)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); ``False`` where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # kernel or filesystem without RENAME_EXCHANGE
    raise OSError(code, os.strerror(code), str(second))


def _replace_checkpoint(temp: Path, final: Path) -> None:
    """Move the complete ``temp`` to ``final``; an existing ``final`` stays complete until the swap."""
    root = final.parent
    if not final.exists():
        os.replace(temp, final)
    elif _exchange(temp, final):
        shutil.rmtree(temp, ignore_errors=True)  # temp now holds the old checkpoint
    else:
        old = root / f".tmp-old-{final.name}"  # put back by restore_interrupted_resaves if killed here
        os.replace(final, old)
        fsync_dir(root)
        os.replace(temp, final)
        fsync_dir(root)
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(root)


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
        restore_interrupted_resaves(root)
        for stale in root.glob(".tmp-checkpoint-*"):
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (temp / STATE_FILE).write_text(json.dumps({**training_state, "global_step": step}, indent=2))
        fsync_tree(temp)  # every file on disk before the name says "complete"
        _replace_checkpoint(temp, final)
        if total_limit is not None and total_limit > 0:
            for _, path in list_checkpoints(root)[:-total_limit]:
                shutil.rmtree(path, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


# ---------------------------------------------------------------------------------------------- resume
def _damage(path: Path) -> str | None:
    """Why ``path`` (a checkpoint file) cannot be read, or ``None`` when it reads back."""
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            from safetensors.torch import load_file

            load_file(str(path))
        elif zipfile.is_zipfile(path):  # torch.save's format: every member's CRC
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                return f"member {bad} fails its CRC check"
        elif path.suffix in (".bin", ".pt", ".pth", ".pkl"):
            import torch

            torch.load(path, map_location="cpu", weights_only=False)  # the run's own file
    except Exception as exc:  # any reader error means the file is damaged
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else 'unreadable'}"
    return None


def find_damaged_file(checkpoint: str | os.PathLike) -> tuple[Path, str] | None:
    """The first file of ``checkpoint`` that does not read back, with the reason (``None`` if all do)."""
    for path in sorted(Path(checkpoint).rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            if path.stat().st_size == 0:
                return path, "the file is empty"
            reason = _damage(path)
            if reason is not None:
                return path, reason
    return None


def _earlier_checkpoint(checkpoint: Path) -> Path | None:
    match = _CHECKPOINT.match(checkpoint.name)
    if not match:
        return None
    earlier = [p for s, p in list_checkpoints(checkpoint.parent) if s < int(match.group(1))]
    return next((p for p in reversed(earlier) if find_damaged_file(p) is None), None)


def damaged_checkpoint_error(checkpoint: Path, path: Path, reason: str) -> ValueError:
    """One line: which file of ``checkpoint`` is damaged and which earlier checkpoint to resume from."""
    earlier = _earlier_checkpoint(checkpoint)
    if earlier is not None:
        advice = f"resume from the earlier checkpoint with --resume_from_checkpoint {earlier}"
    else:
        advice = "there is no earlier complete checkpoint: start again without --resume_from_checkpoint"
    return ValueError(
        f"cannot resume from {checkpoint}: {path.relative_to(checkpoint)} is damaged (truncated or "
        f"corrupted; {reason}); {advice}"
    )


def load_checkpoint(accelerator: Accelerator, checkpoint: str | os.PathLike) -> dict[str, Any]:
    """``accelerator.load_state(checkpoint)``; returns its training state. A damaged file raises
    ``ValueError`` naming it and the newest earlier checkpoint that reads back."""
    checkpoint = Path(checkpoint)
    try:
        state = read_training_state(checkpoint)
        accelerator.load_state(str(checkpoint))
    except Exception as exc:
        found = find_damaged_file(checkpoint)
        if found is None:
            raise
        raise damaged_checkpoint_error(checkpoint, *found) from exc
    return state


def cut_log(path: str | os.PathLike, keep: Callable[[dict], bool]) -> int:
    """Rewrite the JSON-lines log ``path`` (atomically) with the records ``keep`` accepts; a last line cut
    off by a kill is dropped. Returns the number of records dropped (nothing is written when none is)."""
    from modeling_lorat.evaluation.results_io import atomic_write_text

    path = Path(path)
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            dropped += 1
            continue
        if keep(record):
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))
        fsync_dir(path.parent)
    return dropped
