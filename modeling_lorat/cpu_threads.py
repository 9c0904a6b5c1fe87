"""CPU thread count for inference commands (``lorat track`` / ``evaluate`` / ``demo``).

torch starts one OpenMP thread per core. For a small model every operator is too short to split, so
extra threads only wait on each other, and on a machine that other jobs keep busy they wait on those
jobs too: the demo-size tracker ran 36x slower with the default threads than with one. The default
picks one thread for small models and otherwise the cores that are free (cores minus the 1-minute load
average), never more than the cores this process may use. ``--threads N`` or ``OMP_NUM_THREADS``
override it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: Backbones below this many parameters run on one thread (the demo model has 0.8M; dinov2-small 21M).
SMALL_MODEL_PARAMETERS = 5_000_000


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def free_cores() -> int:
    """Usable cores minus the 1-minute load average (at least 1)."""
    cores = usable_cores()
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, min(cores, round(cores - busy)))


def _read_config(model: str) -> dict | None:
    path = Path(model).expanduser() / "config.json"
    if not path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "config.json")
        except Exception:  # not a repo id, or no cache
            return None
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def backbone_parameters(model: str | os.PathLike | None) -> int | None:
    """Approximate parameter count of a checkpoint's ViT backbone from its ``config.json`` (local folder or
    Hub cache; nothing is downloaded), or ``None`` when it cannot be read."""
    if model is None:
        return None
    config = _read_config(os.fspath(model))
    if not config:
        return None
    backbone = config.get("backbone_config") or config
    try:
        hidden, layers = int(backbone["hidden_size"]), int(backbone["num_hidden_layers"])
    except (KeyError, TypeError, ValueError):
        return None
    mlp_ratio = float(backbone.get("mlp_ratio", 4))
    return int(layers * hidden * hidden * (4 + 2 * mlp_ratio))  # attention 4h^2 + MLP 2*ratio*h^2


def default_threads(model: str | os.PathLike | None = None) -> int:
    """One thread for small models, else the free cores shared by the processes of this machine
    (``LOCAL_WORLD_SIZE`` under ``accelerate launch`` / ``torchrun``); see the module docstring."""
    params = backbone_parameters(model)
    if params is not None and params < SMALL_MODEL_PARAMETERS:
        return 1
    try:
        processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        processes = 1
    return max(1, free_cores() // processes)


def configure_threads(threads: int | None, model: str | os.PathLike | None = None) -> int:
    """Set torch's intra-op threads: ``threads`` when given, else ``OMP_NUM_THREADS`` when set, else
    :func:`default_threads`. Returns the count in effect. Raises ``ValueError`` for ``threads < 1``."""
    import torch

    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    if threads is None:
        if os.environ.get("OMP_NUM_THREADS", "").strip():
            return torch.get_num_threads()
        threads = default_threads(model)
    torch.set_num_threads(threads)
    return threads
