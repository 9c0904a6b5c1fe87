"""Optimizer parameter groups and the official learning-rate schedule.

* Weight decay (official ``per_parameter`` rules): 0 for parameters of normalisation layers, for
  parameters that are 1-d after ``squeeze()`` (biases, ...) and for names containing ``embed``
  (the token-type embedding); ``weight_decay`` for the rest. Only trainable parameters are included.
* Schedule (official: timm ``CosineLRScheduler``, ``per_iteration``, ``warmup_prefix``): linear warm-up
  from ``warmup_lr`` (1e-7) to ``lr`` over ``warmup_steps`` updates, then a half cosine from ``lr`` to
  ``min_lr`` (1e-6) over ``cosine_steps`` updates, ``min_lr`` after. The official runner calls
  ``step_update(n)`` *after* update ``n`` (0-based), so update ``n`` runs at ``f(max(n - 1, 0))``;
  :func:`official_lr_lambda` reproduces that lag exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

_NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, nn.LocalResponseNorm)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups ``[{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0}]``
    over the trainable parameters of ``model`` (empty groups dropped). Raises if nothing is trainable."""
    norm_prefixes = tuple(
        f"{name}." for name, module in model.named_modules() if isinstance(module, _NORM_LAYERS)
    )
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith(norm_prefixes) or param.squeeze().ndim <= 1 or "embed" in name:
            no_decay.append(param)
        else:
            decay.append(param)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters")
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def official_cosine_lr(
    step: int, lr: float, warmup_steps: int, cosine_steps: int, warmup_lr: float = 1e-7, min_lr: float = 1e-6
) -> float:
    """timm ``CosineLRScheduler._get_lr(step)`` with ``warmup_prefix=True`` and one cycle."""
    if step < warmup_steps:
        return warmup_lr + step * (lr - warmup_lr) / warmup_steps
    t = step - warmup_steps
    if t >= cosine_steps:
        return min_lr
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * t / cosine_steps))


def official_lr_lambda(
    lr: float, warmup_steps: int, cosine_steps: int, warmup_lr: float = 1e-7, min_lr: float = 1e-6
) -> Callable[[int], float]:
    """Multiplier for ``LambdaLR``: update ``n`` (0-based) uses ``official_cosine_lr(max(n - 1, 0))``."""
    cosine_steps = max(1, int(cosine_steps))

    def factor(update: int) -> float:
        return official_cosine_lr(max(update - 1, 0), lr, warmup_steps, cosine_steps, warmup_lr, min_lr) / lr

    return factor


def build_lr_scheduler(
    name: str,
    optimizer: Optimizer,
    lr: float,
    warmup_steps: int,
    total_steps: int,
    warmup_lr: float = 1e-7,
    min_lr: float = 1e-6,
):
    """``"cosine"``: the official schedule (cosine length = ``total_steps``, as the official
    ``t_initial = epochs * updates_per_epoch``). Any other name goes to ``transformers.get_scheduler``
    (``linear``, ``constant``, ``constant_with_warmup``, ``cosine_with_restarts``, ``polynomial``...).
    The scheduler is stepped once per optimizer update."""
    if warmup_steps < 0 or total_steps < 1:
        raise ValueError(f"need warmup_steps >= 0 and total_steps >= 1, got {warmup_steps}, {total_steps}")
    if name == "cosine":
        return LambdaLR(optimizer, official_lr_lambda(lr, warmup_steps, total_steps, warmup_lr, min_lr))
    from transformers import get_scheduler

    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)
