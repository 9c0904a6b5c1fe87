"""Tiny LoRAT models with random weights (fast on CPU): `train.py --tiny`, the tests, notebooks and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import Dinov2Config, Dinov2Model

from .configuration_lorat import LoratConfig
from .modeling_lorat import LoratForTracking

TINY_BACKBONE = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    mlp_ratio=2,
    image_size=56,
    patch_size=14,
    layerscale_value=1.0,
)


def tiny_config(**overrides: Any) -> LoratConfig:
    """2 layers, hidden 32, template 28 px / search 56 px (2x2 / 4x4 tokens), LoRA r=4."""
    backbone = dict(TINY_BACKBONE, **overrides.pop("backbone_config", {}))
    kwargs = dict(template_size=28, search_size=56, lora_r=4, lora_alpha=4, min_object_size=2.0)
    kwargs.update(overrides)
    return LoratConfig(backbone_config=backbone, **kwargs)


def tiny_dinov2(seed: int = 0, **overrides: Any) -> Dinov2Model:
    """A random tiny ``Dinov2Model`` standing in for a pretrained DINOv2 checkpoint."""
    torch.manual_seed(seed)
    return Dinov2Model(Dinov2Config(**dict(TINY_BACKBONE, **overrides)))


def tiny_model(seed: int = 0, lora: bool = True, **overrides: Any):
    """A tiny tracker with random weights; with ``lora=True`` a peft ``PeftModel`` (official init)."""
    from .lora import apply_lora

    torch.manual_seed(seed)
    model = LoratForTracking(tiny_config(**overrides))
    return apply_lora(model) if lora else model


def save_tiny_checkpoint(directory: str | Path, seed: int = 0) -> Path:
    """Save a merged tiny tracker (full checkpoint) with its image processor to ``directory``."""
    from .image_processing_lorat import LoratImageProcessor

    directory = Path(directory)
    model = tiny_model(seed).merge_and_unload()
    model.save_pretrained(directory)
    LoratImageProcessor.from_config(model.config).save_pretrained(directory)
    return directory
