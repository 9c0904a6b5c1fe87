"""Checks around model loading, so that bad input fails fast with one clear message.

* :func:`resolve_model_path`: a local folder or a Hub repo id. A path that does not exist says "no such
  folder" at once; a repo id that is not cached fails at once (no 90 s of retries) when the Hub is
  unreachable or ``HF_HUB_OFFLINE`` is set.
* :func:`check_safetensors_file` / :func:`check_finite_weights`: truncated or garbled ``.safetensors``
  files and NaN/Inf weights raise :class:`ModelLoadError` naming the file or the tensor.
* :func:`resolve_device`: ``"gpu"``, ``"cuda"`` without a GPU, ``"cuda:3"`` on a 1-GPU machine raise
  ``ValueError`` listing the devices this machine has.
* :func:`load_lorat_checkpoint`: ``LoratForTracking.from_pretrained`` with all of the above.

Errors: ``FileNotFoundError`` when a model cannot be found, :class:`ModelLoadError` (a ``ValueError``)
when it is found but cannot be used; both carry the whole explanation in one line.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where needed, so path checks stay cheap for the CLI
    import torch

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TRUE = ("1", "ON", "YES", "TRUE")
_REACHABLE: dict[str, tuple[float, bool]] = {}
_REACHABLE_TTL_S = 30.0
_HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only")


class ModelLoadError(ValueError):
    """A checkpoint was found but cannot be used: damaged files, NaN/Inf weights, mismatched parts."""


# ---------------------------------------------------------------------------------------------- paths
def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set (read now, so a change after import counts)."""
    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().upper() in _TRUE
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_reachable(timeout: float | None = None) -> bool:
    """Whether the Hub endpoint answers one request (no retries; remembered for 30 s)."""
    from huggingface_hub import constants, get_session

    endpoint = constants.ENDPOINT
    cached = _REACHABLE.get(endpoint)
    if cached is not None and time.monotonic() - cached[0] < _REACHABLE_TTL_S:
        return cached[1]
    try:
        get_session().head(endpoint, timeout=timeout or constants.HF_HUB_ETAG_TIMEOUT)
        reachable = True
    except Exception:  # any transport error (DNS, refused, timeout, proxy): unreachable
        reachable = False
    _REACHABLE[endpoint] = (time.monotonic(), reachable)
    return reachable


def looks_like_path(name: str) -> bool:
    """True for names that can only be a local path (absolute, ``./``, ``~``, ``a/b/c``, not a repo id)."""
    return (
        os.path.isabs(name)
        or name.startswith((".", "~"))
        or "\\" in name
        or name.endswith("/")
        or not _REPO_ID.match(name)
    )


def _cached_on_hub(repo_id: str, cache_dir: Any = None, revision: str | None = None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir, revision=revision)
    except Exception:  # an invalid repo id for the cache layout
        return False
    return isinstance(found, str)


def _local_typo(text: str) -> str | None:
    """``"no such folder: demo_output/ has no modl"`` when ``text``'s first part is a local folder."""
    parent, _, rest = text.partition("/")
    if rest and Path(parent).is_dir():
        return f"no such folder: {parent}/ has no {rest}"
    return None


def resolve_model_path(
    name_or_path: str | os.PathLike,
    what: str = "model",
    *,
    cache_dir: Any = None,
    revision: str | None = None,
    local_files_only: bool = False,
) -> tuple[str, bool]:
    """Where ``name_or_path`` loads from, checked before anything slow happens.

    Returns ``(folder_or_repo_id, local_files_only)``; ``local_files_only`` becomes True when the Hub is
    unreachable but the repo is in the local cache (so loading does not wait on retries).

    Raises:
        FileNotFoundError: a path that does not exist ("no such folder"), a file instead of a folder,
            or a repo id that is neither cached nor loadable because the Hub is unreachable or
            ``HF_HUB_OFFLINE`` / ``local_files_only`` forbids asking it.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path), local_files_only
    if path.exists():
        raise FileNotFoundError(f"{what} must be a folder or a Hub repo id, got a file: {text}")
    if looks_like_path(text):
        raise FileNotFoundError(f"{what} folder not found: {text} (no such folder)")
    offline = local_files_only or hub_offline()
    if not offline and hub_reachable():
        return text, False
    if _cached_on_hub(text, cache_dir, revision):
        return text, True
    typo = _local_typo(text)
    if typo:
        raise FileNotFoundError(f"{what} folder not found: {text} ({typo})")
    if hub_offline():
        reason = "HF_HUB_OFFLINE is set"
    elif local_files_only:
        reason = "local_files_only=True"
    else:
        from huggingface_hub import constants

        reason = f"the Hugging Face Hub ({constants.ENDPOINT}) is unreachable"
    raise FileNotFoundError(
        f"{what} folder not found: {text} (no such folder), and no Hub repo {text!r} in the local cache "
        f"while {reason}"
    )


# ---------------------------------------------------------------------------------------------- files
def check_safetensors_file(path: str | os.PathLike) -> None:
    """Raise :class:`ModelLoadError` naming ``path`` unless its header and size are intact."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as exc:  # SafetensorError, OSError
        raise ModelLoadError(
            f"{path} is not a valid safetensors file ({exc}): it is truncated or damaged; copy or download it again"
        ) from None


def check_finite_weights(named_tensors: Iterable[tuple[str, torch.Tensor]], source: str) -> None:
    """Raise :class:`ModelLoadError` naming the first floating-point tensor holding NaN or Inf."""
    import torch

    for name, tensor in named_tensors:
        if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.is_meta:
            continue
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            bad = int(finite.numel() - finite.sum())
            raise ModelLoadError(
                f"{source}: weight {name!r} has {bad} NaN/Inf value(s) of {tensor.numel()}; refusing to load "
                "a checkpoint that would track nan boxes (was training diverging when it was saved?)"
            )


def check_safetensors_weights(path: str | os.PathLike) -> None:
    """:func:`check_safetensors_file` and :func:`check_finite_weights` on every tensor of one file."""
    from safetensors import safe_open

    check_safetensors_file(path)
    with safe_open(str(path), framework="pt") as handle:
        check_finite_weights(((key, handle.get_tensor(key)) for key in handle.keys()), str(path))


def checkpoint_file(name_or_path: str, filename: str, **hub_kwargs: Any) -> Path | None:
    """``filename`` of a local folder or an already downloaded Hub repo (None when absent)."""
    local = Path(name_or_path) / filename
    if local.is_file():
        return local
    if Path(name_or_path).is_dir():
        return None
    from transformers.utils import cached_file

    kwargs = {k: hub_kwargs[k] for k in _HUB_KWARGS if k in hub_kwargs}
    try:
        found = cached_file(
            name_or_path,
            filename,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
            **kwargs,
        )
    except OSError:
        return None
    return Path(found) if found else None


# ---------------------------------------------------------------------------------------------- devices
def available_devices() -> list[str]:
    """Device names usable on this machine: ``cpu`` plus ``cuda``/``cuda:N``, ``mps``, ``xpu`` when present."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        devices += ["xpu"] + [f"xpu:{i}" for i in range(torch.xpu.device_count())]
    return devices


def resolve_device(device: str | int | torch.device) -> torch.device:
    """``device`` as a ``torch.device``, checked against this machine.

    Raises ``ValueError`` listing the valid devices for an unknown name (``"gpu"``), a backend that is
    not available (``"cuda"`` without a GPU) or an index out of range.
    """
    import torch

    valid = available_devices()
    listing = f"valid devices here: {', '.join(valid)}"
    try:
        resolved = torch.device(f"cuda:{device}" if isinstance(device, int) else device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r}; {listing}") from None
    if resolved.type == "cpu":
        return resolved
    shown = repr(str(device)) if str(device) == str(resolved) else f"{device!r} ({resolved})"
    counts: dict[str, Callable[[], int]] = {"cuda": torch.cuda.device_count}
    if hasattr(torch, "xpu"):
        counts["xpu"] = torch.xpu.device_count
    if resolved.type == "mps":
        if "mps" in valid:
            return resolved
        raise ValueError(f"device {shown} requested but no mps device is available; {listing}")
    if resolved.type not in counts:
        raise ValueError(f"device {shown} is not supported for tracking; {listing}")
    count = counts[resolved.type]() if resolved.type in valid else 0
    if count == 0:
        raise ValueError(f"device {shown} requested but no {resolved.type} device is available; {listing}")
    if resolved.index is not None and resolved.index >= count:
        raise ValueError(f"device {shown} does not exist ({count} {resolved.type} device(s)); {listing}")
    return resolved


# ---------------------------------------------------------------------------------------------- loading
def load_lorat_checkpoint(
    model_cls: type, load_full: Callable[..., Any], name_or_path: str | os.PathLike, *args: Any, **kwargs: Any
) -> Any:
    """``LoratForTracking.from_pretrained``: resolve the path, load a full or adapter checkpoint, check it.

    ``load_full`` is ``PreTrainedModel.from_pretrained`` bound to ``model_cls``. Adapter checkpoints go to
    :func:`modeling_lorat.lora.load_adapter_checkpoint` (``merge_lora`` picks merged or ``PeftModel``).
    Raises ``FileNotFoundError`` (not found) or :class:`ModelLoadError` (damaged, non-finite, mismatched).
    """
    from safetensors import SafetensorError

    from .lora import is_adapter_checkpoint, load_adapter_checkpoint

    merge_lora = kwargs.pop("merge_lora", True)
    name, local_only = resolve_model_path(
        name_or_path,
        cache_dir=kwargs.get("cache_dir"),
        revision=kwargs.get("revision"),
        local_files_only=bool(kwargs.get("local_files_only", False)),
    )
    if local_only:
        kwargs["local_files_only"] = True
    if is_adapter_checkpoint(name, **kwargs):
        return load_adapter_checkpoint(model_cls, name, merge=merge_lora, **kwargs)
    local = Path(name).is_dir()
    for file in sorted(Path(name).glob("model*.safetensors")) if local else []:
        check_safetensors_file(file)
    try:
        model = load_full(name, *args, **kwargs)
    except SafetensorError as exc:  # a downloaded file that is damaged
        found = checkpoint_file(name, "model.safetensors", **kwargs)
        where = found or f"a safetensors file of {name}"
        raise ModelLoadError(
            f"{where} is not a valid safetensors file ({exc}): it is truncated or damaged"
        ) from None
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        typo = None if local else _local_typo(name)
        if typo:  # "demo_output/modl" asked on the Hub, which has no such repo
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FileNotFoundError(f"model folder not found: {name} ({typo}; on the Hub: {first})") from None
        raise ModelLoadError(f"cannot load model {name}: {exc}") from None
    check_finite_weights(model.state_dict().items(), f"model {name}")
    return model
