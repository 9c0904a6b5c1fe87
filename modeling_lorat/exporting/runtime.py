"""Run an exported LoRAT graph (ONNX with onnxruntime, ``.pt2`` with ``torch.export.load``) and compare
it with the eager model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .tracing import INPUT_NAMES, OUTPUT_NAMES, example_inputs

#: Batch sizes an export is checked at: 1 and one that differs from the traced batch (2).
VERIFY_BATCH_SIZES = (1, 3)


def load_runner(path: str | Path, format: str) -> Callable[..., tuple[np.ndarray, ...]]:
    """A function ``(template, search, mask) -> (score_map, pred_boxes)`` (numpy float32) running the export
    at ``path``: an onnxruntime CPU session for ``"onnx"``, the loaded ``ExportedProgram`` for
    ``"torch-export"``. Inputs are numpy arrays or CPU tensors."""
    path = str(path)
    if format == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

        def run_onnx(*inputs: Any) -> tuple[np.ndarray, ...]:
            feed = {name: np.asarray(value) for name, value in zip(INPUT_NAMES, inputs)}
            return tuple(session.run(list(OUTPUT_NAMES), feed))

        return run_onnx
    if format == "torch-export":
        module = torch.export.load(path).module()

        @torch.no_grad()
        def run_program(*inputs: Any) -> tuple[np.ndarray, ...]:
            outputs = module(*(torch.as_tensor(value) for value in inputs))
            return tuple(output.numpy() for output in outputs)

        return run_program
    raise ValueError(f"unknown export format {format!r}; expected 'onnx' or 'torch-export'")


@torch.no_grad()
def eager_outputs(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> tuple[np.ndarray, ...]:
    """``(score_map, pred_boxes)`` of the eager ``model`` on ``inputs`` as numpy float32."""
    output = model.eval()(*inputs, return_dict=True)
    return output.score_map.numpy(), output.pred_boxes.numpy()


def reference_cases(
    model: torch.nn.Module, batch_sizes: Sequence[int] = VERIFY_BATCH_SIZES, seed: int = 1
) -> list[tuple[tuple[torch.Tensor, ...], tuple[np.ndarray, ...]]]:
    """``[(inputs, eager outputs)]`` at each batch size (random inputs; taken before the model is fused)."""
    cases = []
    for index, batch in enumerate(batch_sizes):
        inputs = example_inputs(model.config, batch, seed=seed + index)
        cases.append((inputs, eager_outputs(model, inputs)))
    return cases


def max_abs_differences(
    runner: Callable[..., tuple[np.ndarray, ...]],
    cases: Sequence[tuple[tuple[torch.Tensor, ...], tuple[np.ndarray, ...]]],
) -> dict[str, float]:
    """Largest ``|export - eager|`` per output over ``cases``; ``ValueError`` when a shape differs."""
    worst = dict.fromkeys(OUTPUT_NAMES, 0.0)
    for inputs, expected in cases:
        got = runner(*inputs)
        for name, out, ref in zip(OUTPUT_NAMES, got, expected):
            if out.shape != ref.shape:
                raise ValueError(f"exported {name} has shape {out.shape}, eager {ref.shape}")
            diff = float(np.abs(out.astype(np.float64) - ref).max()) if out.size else 0.0
            worst[name] = max(worst[name], diff if np.isfinite(diff) else float("inf"))
    return worst
