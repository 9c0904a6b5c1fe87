"""Mixed precision for LoRA training: frozen weights stored in the compute dtype.

Under ``fp16``/``bf16`` autocast every frozen float32 weight is cast to the compute dtype again on
every forward (extra kernels, an extra copy of the backbone in memory). As diffusers does for its
frozen text encoders and VAE, :func:`cast_frozen_parameters_` stores the frozen projection weights in
the compute dtype once; trainable parameters (LoRA, token types, head) stay float32 master weights for
the optimizer and the gradient scaler.
"""

from __future__ import annotations

import torch
from torch import nn

COMPUTE_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def compute_dtype(mixed_precision: str | None) -> torch.dtype | None:
    """``"fp16"``/``"bf16"`` -> the autocast dtype; ``"no"``/``None`` -> ``None``."""
    return COMPUTE_DTYPES.get(str(mixed_precision).lower())


def cast_frozen_parameters_(model: nn.Module, dtype: torch.dtype) -> int:
    """Cast the frozen weights and biases of ``model``'s Linear and Conv layers to ``dtype`` in place;
    returns how many elements were cast.

    Trainable parameters stay float32 (master weights), and so do normalisation layers and embeddings
    (small; autocast runs layer norm in float32 anyway).
    """
    cast = 0
    for module in model.modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            continue
        for param in module.parameters(recurse=False):
            if not param.requires_grad and param.is_floating_point() and param.dtype != dtype:
                param.data = param.data.to(dtype)
                cast += param.numel()
    return cast
