"""Trace a merged `LoratForTracking` into a graph with a dynamic batch: ``torch.export`` and ONNX.

Both formats trace the same :class:`ExportableLorat` (three tensors in, ``score_map`` and ``pred_boxes``
out) through ``torch.export`` (non-strict); ONNX goes on through torch's dynamo exporter (onnxscript).
The batch dimension is one symbolic size shared by the three inputs, traced at batch 2 so that it is
not specialised to 1. During tracing ``torch.compiler.is_compiling()`` is true, so the model's input
checks that read tensor values are left out of the graph (the shape checks hold by construction).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

#: Graph input and output names (the model's keyword argument and output field names).
INPUT_NAMES = ("pixel_values_template", "pixel_values_search", "template_mask")
OUTPUT_NAMES = ("score_map", "pred_boxes")
#: Batch size the graph is traced at (1 would be specialised to a constant).
TRACE_BATCH = 2


class ExportableLorat(nn.Module):
    """``(pixel_values_template, pixel_values_search, template_mask) -> (score_map, pred_boxes)`` of a
    merged (optionally fused) `LoratForTracking`, in eval mode: the graph that is exported."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.eval()

    def forward(
        self,
        pixel_values_template: torch.Tensor,
        pixel_values_search: torch.Tensor,
        template_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.model(
            pixel_values_template=pixel_values_template,
            pixel_values_search=pixel_values_search,
            template_mask=template_mask,
            return_dict=True,
        )
        return output.score_map, output.pred_boxes


def example_inputs(config: Any, batch: int = TRACE_BATCH, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random model inputs of ``batch`` samples for ``config`` (a `LoratConfig`): normal float32 pixel
    values and an int64 0/1 template mask, from a private generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    t, s, g = config.template_size, config.search_size, config.template_grid
    channels = config.backbone_config.num_channels
    return (
        torch.randn(batch, channels, t, t, generator=generator),
        torch.randn(batch, channels, s, s, generator=generator),
        torch.randint(0, 2, (batch, g, g), generator=generator, dtype=torch.int64),
    )


def dynamic_batch_shapes() -> dict[str, dict[int, Any]]:
    """``dynamic_shapes`` for ``torch.export``: dimension 0 of every input is the one symbolic ``batch``."""
    batch = torch.export.Dim("batch", min=1)
    return {name: {0: batch} for name in INPUT_NAMES}


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporters' notices that say nothing about this model (torchvision ops not registered,
    pytree deprecations, the shared batch axis name)."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            warnings.filterwarnings("ignore", message=r".*The axis name: batch will not be used")
            yield
    finally:
        registration.setLevel(level)


@torch.no_grad()
def to_exported_program(model: nn.Module) -> torch.export.ExportedProgram:
    """``torch.export`` of ``model`` (a merged float32 `LoratForTracking`) with a dynamic batch."""
    module = ExportableLorat(model)
    with quiet_exporter():
        return torch.export.export(
            module, example_inputs(model.config), dynamic_shapes=dynamic_batch_shapes(), strict=False
        )


@torch.no_grad()
def to_onnx_program(model: nn.Module, opset: int | None = None) -> Any:
    """ONNX (``torch.onnx.export(dynamo=True)``, optimised) of ``model`` with a dynamic ``batch`` axis;
    returns the in-memory ``torch.onnx.ONNXProgram``. ``opset`` defaults to the exporter's (20 in torch 2.13)."""
    module = ExportableLorat(model)
    with quiet_exporter():
        return torch.onnx.export(
            module,
            example_inputs(model.config),
            None,
            dynamo=True,
            verbose=False,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=dynamic_batch_shapes(),
            opset_version=opset,
            optimize=True,
        )
