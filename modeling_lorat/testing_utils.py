"""Test helpers: the tiny random models of :mod:`modeling_lorat.tiny_models` under their test-suite name."""

from .tiny_models import TINY_BACKBONE, save_tiny_checkpoint, tiny_config, tiny_dinov2, tiny_model

__all__ = ["TINY_BACKBONE", "save_tiny_checkpoint", "tiny_config", "tiny_dinov2", "tiny_model"]
